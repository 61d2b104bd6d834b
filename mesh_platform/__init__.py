"""The program's own library, beside its components: what ``__main__.py`` and the components share.

- ``settings``: the schema of the stack's typed settings: every key, its type, default and rules;
- ``loader``: reads the stack's config and validates it before anything is registered, reporting
  every problem at once;
- ``versions``: every pinned version and image, and the compatibility matrix they are checked against;
- ``edges``: every ordering and data edge between components, with its reason;
- ``kube``: the Kubernetes building blocks every component uses (the one provider, a pinned Helm
  release, STRICT mTLS) and the ``Cluster`` surface;
- ``policy``: the NetworkPolicy builders (peers, rules, policies) every component writes policy with.

Ships with the program: imports pulumi, its providers and pydantic only (tests/test_layers.py).
"""
