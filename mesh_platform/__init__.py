"""The program's own library, beside its components: what ``__main__.py`` and the components share.

- ``settings``: the stack's typed settings, validated before anything is registered;
- ``edges``: every ordering and data edge between components, with its reason;
- ``kube``: the Kubernetes building blocks every component uses (the one provider, a pinned Helm
  release, STRICT mTLS) and the ``Cluster`` surface;
- ``policy``: the NetworkPolicy builders (peers, rules, policies) every component writes policy with.

Ships with the program: imports pulumi, its providers and pydantic only (tests/test_layers.py).
"""
