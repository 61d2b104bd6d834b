"""The routing table as istiod programs it: for each gateway host (and in-mesh host) and path, which
service, subset and weight answers, and whether every subset really selects pods.

Every rule below is istiod's, read in istio/istio (release-1.30 line; each function named here is the same
at 1.31.0-rc.0, the nearest stored tag to the pinned 1.31.4, or refactored without a change of result)
and named where it is used:

- ``pilot/pkg/model/config.go`` ``ResolveShortnameToFQDN``: a VirtualService host (and a destination
  host) without a dot, other than ``*`` and IP addresses, becomes ``<host>.<vs namespace>.svc.cluster.local``.
- ``pilot/pkg/model/virtualservice.go`` ``resolveGatewayName``: a gateway reference ``name`` means
  ``<vs namespace>/name``, ``./name`` too, ``ns/name`` is taken as written, and the legacy
  ``name.ns.svc.cluster.local`` means ``ns/name``.
- ``pilot/pkg/model/gateway.go`` ``sanitizeServerHostNamespace``: a Gateway server host ``./h`` means
  ``<gateway namespace>/h``, ``*/h`` means ``h``; server hosts are otherwise literal (never resolved).
  ``gatewayRDSRouteName``: every plain-HTTP server on a port shares the route configuration
  ``http.<port>``; each HTTPS (terminating) server has its own ``https.<port>.<name>.<gateway>.<ns>``.
- ``pkg/config/host/names.go`` ``NamesForNamespace`` (a server host ``ns/h`` applies only to
  VirtualServices in ``ns``) and ``Intersection``; ``pkg/config/host/name.go`` ``SubsetOf`` (``*``
  and ``*.suffix`` wildcards).
- ``pilot/pkg/model/push_context.go`` ``VirtualServicesForGateway``: a gateway sees the
  VirtualServices exported to its proxy's namespace (``exportTo``: ``*``, ``.``, or namespaces).
- ``pilot/pkg/networking/core/gateway.go`` ``buildGatewayHTTPRouteConfig``: for each server of the
  route configuration, each visible VirtualService bound to the server's Gateway adds its routes to a
  virtual host per intersecting host (virtual hosts of the same name merge across servers and
  Gateways, routes appended); ``tls.httpsRedirect`` makes the whole virtual host redirect
  (``RequireTls: ALL``); no virtual host at all means the blackhole (404 for everything). Port is
  ignored in host matching (``IgnorePortInHostMatching``).
- ``pilot/pkg/networking/core/route/route.go`` ``BuildHTTPRoutesForVirtualService`` /
  ``TranslateRoute`` (a match with another ``port`` or other ``gateways`` is dropped; nothing after a
  catch-all is built) and ``SortVHostRoutes`` / ``IsCatchAllRoute`` (catch-alls move to the end of the
  merged virtual host, the rest keep their order): a route behind another VirtualService's catch-all
  in the same virtual host never answers, which is a violation.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from offline.verify import Route, Violation, ref

DOMAIN = "cluster.local"
MESH = "mesh"
_HTTP_PROTOCOLS = {"HTTP", "HTTP2", "GRPC", "GRPC-WEB"}


# --- istiod's name rules ------------------------------------------------------------------------


def resolve_host(host: str, namespace: str) -> str:
    """``ResolveShortnameToFQDN`` (pilot/pkg/model/config.go)."""
    if host == "*" or "." in host:
        return host
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        return f"{host}.{namespace}.svc.{DOMAIN}"


def resolve_gateway(name: str, namespace: str) -> str:
    """``resolveGatewayName`` (pilot/pkg/model/virtualservice.go); ``mesh`` stays ``mesh``."""
    if name == MESH:
        return name
    if "/" in name:
        ns, _, short = name.partition("/")
        return f"{namespace}/{short}" if ns == "." else name
    if "." in name:
        parts = name.split(".")
        return f"{parts[1]}/{parts[0]}"
    return f"{namespace}/{name}"


def subset_of(a: str, b: str) -> bool:
    """``Name.SubsetOf`` (pkg/config/host/name.go): ``a`` is covered by ``b``."""
    a_wild, b_wild = a.startswith("*"), b.startswith("*")
    if a_wild:
        return b_wild and len(a) >= len(b) and a[1:].endswith(b[1:])
    if b_wild:
        return a.endswith(b[1:])
    return a == b


def intersection(server_hosts: list[str], vs_hosts: list[str]) -> list[str]:
    """``Names.Intersection`` (pkg/config/host/names.go), server hosts first as istiod calls it."""
    out: list[str] = []
    for h in server_hosts:
        for o in vs_hosts:
            hit = h if subset_of(h, o) else o if subset_of(o, h) else None
            if hit is not None and hit not in out:
                out.append(hit)
    return out


def hosts_for_namespace(server_hosts: list[str], namespace: str) -> list[str]:
    """``NamesForNamespace`` (pkg/config/host/names.go) after ``sanitizeServerHostNamespace``."""
    out = []
    for h in server_hosts:
        if "/" in h:
            ns, _, h = h.partition("/")
            if ns not in (namespace, "*"):
                continue
        out.append(h)
    return out


def _sanitize(hosts: list[str], gateway_ns: str) -> list[str]:
    return [f"{gateway_ns}/{h.split('/', 1)[1]}" if h.startswith("./") else h for h in hosts]


def _visible(vs: dict[str, Any], proxy_ns: str | None) -> bool:
    """``exportTo`` seen from the gateway proxy's namespace (push_context.go VirtualServicesForGateway).

    An unknown proxy namespace (no gateway workload among the objects) sees only public ones."""
    export = (vs.get("spec") or {}).get("exportTo") or ["*"]
    ns = vs["metadata"].get("namespace", "default")
    return "*" in export or (proxy_ns is not None and (proxy_ns in export or ("." in export and ns == proxy_ns)))


# --- the model ----------------------------------------------------------------------------------


@dataclass
class HttpRoute:
    """One Envoy route: its path match and either destinations or a redirect."""

    path: str
    kind: str
    """``prefix``, ``exact`` or ``regex``."""
    catch_all: bool
    source: str
    """``VirtualService ns/name`` and ``http[i]`` that made it."""
    index: int
    destinations: list[tuple[str, str, int]] = field(default_factory=list)
    """(``namespace/service``, subset or ``*``, weight)."""
    redirect: str | None = None


@dataclass
class VirtualHost:
    domain: str
    routes: list[HttpRoute] = field(default_factory=list)
    require_tls: bool = False
    """Every request is redirected to HTTPS (a server's ``tls.httpsRedirect``)."""

    def reachable(self) -> list[HttpRoute]:
        """Routes in the order Envoy tries them, up to and including the first catch-all."""
        if self.require_tls:
            return []
        out = []
        for r in self.routes:
            out.append(r)
            if r.catch_all:
                break
        return out


@dataclass
class Server:
    """One Gateway server and the route configuration it lands in."""

    gateway: str
    """``namespace/name`` of the Gateway."""
    port: int
    name: str
    protocol: str
    hosts: list[str]
    tls_mode: str | None
    https_redirect: bool
    route_config: str
    virtual_hosts: list[VirtualHost] = field(default_factory=list)
    """Of the whole route configuration (shared by plain-HTTP servers on the port)."""
    bound: list[str] = field(default_factory=list)
    """Why each VirtualService bound to this Gateway did or did not add routes here."""
    routed: bool = False


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0  # the schema check reports it


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    if obj.get("kind") == "Pod":
        return (obj.get("metadata") or {}).get("labels") or {}
    spec = obj.get("spec") or {}
    return ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}


def _matches(http: dict[str, Any]) -> list[dict[str, Any] | None]:
    return list(http.get("match") or []) or [None]


def _path(match: dict[str, Any] | None) -> tuple[str, str, bool]:
    """(path as shown, match kind, is a catch-all per ``IsCatchAllRoute``)."""
    if match is None:
        return "/", "prefix", True
    uri = match.get("uri") or {}
    plain = not (match.get("headers") or match.get("queryParams"))
    if "exact" in uri:
        return uri["exact"], "exact", False
    if "regex" in uri:
        return f"~{uri['regex']}", "regex", plain and uri["regex"] == ".*"
    prefix = uri.get("prefix", "/")
    return prefix, "prefix", plain and prefix == "/"


def _service_key(host: str, namespace: str) -> tuple[str, str]:
    fqdn = resolve_host(host, namespace)
    parts = fqdn.split(".")
    return (parts[1], parts[0]) if len(parts) > 1 else (namespace, parts[0])


def _weights(dests: list[dict[str, Any]]) -> list[int]:
    return [d.get("weight", 100 if len(dests) == 1 else 0) for d in dests]


def build_routes(vs: dict[str, Any], port: int | None, gateway: str) -> list[HttpRoute]:
    """``BuildHTTPRoutesForVirtualService`` for one listener port and one gateway (``mesh`` for sidecars)."""
    ns = vs["metadata"].get("namespace", "default")
    out: list[HttpRoute] = []
    for i, http in enumerate((vs.get("spec") or {}).get("http") or []):
        done = False
        for match in _matches(http):
            if match is not None:
                if port is not None and match.get("port") and match["port"] != port:
                    continue
                gws = [resolve_gateway(g, ns) for g in match.get("gateways") or []]
                if gws and gateway not in gws:
                    continue
            path, kind, catch_all = _path(match)
            route = HttpRoute(path, kind, catch_all, ref(vs), i)
            if "redirect" in http:
                r = http["redirect"] or {}
                route.redirect = f"{r.get('scheme', 'same scheme')}://{r.get('authority', '')}{r.get('uri', '')}"
            else:
                dests = http.get("route") or []
                for d, w in zip(dests, _weights(dests), strict=True):
                    dest = d.get("destination") or {}
                    key = _service_key(dest.get("host", ""), ns)
                    route.destinations.append((f"{key[0]}/{key[1]}", dest.get("subset") or "*", w))
            out.append(route)
            if catch_all:
                done = True
                break
        if done or (not http.get("match")):
            break
    return out


def _route_config(server: dict[str, Any], gateway: str) -> str | None:
    """``gatewayRDSRouteName`` (pilot/pkg/model/gateway.go); None for TCP/TLS passthrough."""
    port = server.get("port") or {}
    protocol = (port.get("protocol") or "").upper()
    if protocol in _HTTP_PROTOCOLS:
        return f"http.{port.get('number')}"
    tls = server.get("tls") or {}
    if protocol == "HTTPS" and tls.get("mode", "SIMPLE") != "PASSTHROUGH":
        ns, _, name = gateway.partition("/")
        return f"https.{port.get('number')}.{port.get('name', '')}.{name}.{ns}"
    return None


def gateway_servers(objects: list[dict[str, Any]], proxy_namespace: str | None = None) -> list[Server]:
    """Every HTTP/HTTPS Gateway server with the virtual hosts istiod gives its route configuration.

    Gateways that select the same pods share listeners; the pods' namespace (where exportTo is
    judged) comes from a workload among the objects that the Gateway selects, else ``proxy_namespace``."""
    gateways = [o for o in objects if o.get("kind") == "Gateway"]
    vses = [o for o in objects if o.get("kind") == "VirtualService"]
    workloads = [o for o in objects if o.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "Pod")]

    # One proxy per set of gateway pods: a selected workload, or the selector itself when none is here.
    proxies: dict[tuple, tuple[str | None, list[dict[str, Any]]]] = {}
    for gw in gateways:
        selector = (gw.get("spec") or {}).get("selector") or {}
        found = [w for w in workloads if _selects(selector, _labels(w))]
        keys: list[tuple[Any, ...]] = [
            ("workload", w["metadata"].get("namespace", "default"), w["metadata"]["name"]) for w in found
        ] or [("selector", tuple(sorted(selector.items())))]
        for key in keys:
            ns = key[1] if key[0] == "workload" else proxy_namespace
            proxies.setdefault(key, (ns, []))[1].append(gw)

    out: list[Server] = []
    for proxy_ns, gws in proxies.values():
        configs: dict[str, list[Server]] = {}
        for gw in gws:
            gw_ns = gw["metadata"].get("namespace", "default")
            name = f"{gw_ns}/{gw['metadata']['name']}"
            for s in (gw.get("spec") or {}).get("servers") or []:
                rc = _route_config(s, name)
                if rc is None:
                    continue
                port = s.get("port") or {}
                tls = s.get("tls") or {}
                server = Server(
                    gateway=name,
                    port=_int(port.get("number")),
                    name=port.get("name", ""),
                    protocol=(port.get("protocol") or "").upper(),
                    hosts=_sanitize(list(s.get("hosts") or []), gw_ns),
                    tls_mode=tls.get("mode") if (port.get("protocol") or "").upper() == "HTTPS" else None,
                    https_redirect=bool(tls.get("httpsRedirect")),
                    route_config=rc,
                )
                configs.setdefault(rc, []).append(server)
                out.append(server)
        for servers in configs.values():
            _fill(servers, vses, proxy_ns)
    return out


def _fill(servers: list[Server], vses: list[dict[str, Any]], proxy_ns: str | None) -> None:
    """``buildGatewayHTTPRouteConfig`` for one route configuration."""
    vhosts: dict[str, VirtualHost] = {}
    for server in servers:
        for vs in _ordered(vses, proxy_ns):
            ns = vs["metadata"].get("namespace", "default")
            spec = vs.get("spec") or {}
            if server.gateway not in [resolve_gateway(g, ns) for g in spec.get("gateways") or []]:
                continue
            vs_hosts = [resolve_host(h, ns) for h in spec.get("hosts") or []]
            if not _visible(vs, proxy_ns):
                server.bound.append(f"{ref(vs)} is not exported to the gateway's namespace ({proxy_ns or 'unknown'})")
                continue
            common = intersection(hosts_for_namespace(server.hosts, ns), vs_hosts)
            if not common:
                server.bound.append(f"{ref(vs)} hosts {vs_hosts} (as istiod resolves them) do not intersect")
                continue
            routes = build_routes(vs, server.port, server.gateway)
            if not routes:
                server.bound.append(f"{ref(vs)} has no route for port {server.port}")
                continue
            server.routed = True
            for h in common:
                vh = vhosts.setdefault(h.lower(), VirtualHost(h.lower()))
                vh.routes += routes
                vh.require_tls |= server.https_redirect
        if server.https_redirect:
            server.routed = True  # istiod adds a redirect-only virtual host for every server host
            for h in hosts_for_namespace(server.hosts, "*"):
                vhosts.setdefault(h.lower(), VirtualHost(h.lower())).require_tls = True
    for vh in vhosts.values():
        vh.routes = [r for r in vh.routes if not r.catch_all] + [r for r in vh.routes if r.catch_all]
    ordered = sorted(vhosts.values(), key=lambda v: v.domain)
    for server in servers:
        server.virtual_hosts = ordered


def _ordered(vses: list[dict[str, Any]], proxy_ns: str | None) -> list[dict[str, Any]]:
    """VirtualServicesForGateway's order: private to the proxy's namespace, exported to it, public."""

    def rank(vs: dict[str, Any]) -> int:
        export = (vs.get("spec") or {}).get("exportTo") or ["*"]
        if "*" in export:
            return 2
        return 0 if "." in export and vs["metadata"].get("namespace", "default") == proxy_ns else 1

    return sorted(vses, key=rank)


# --- the table and its checks ---------------------------------------------------------------


def table(objects: list[dict[str, Any]], proxy_namespace: str | None = None) -> tuple[list[Route], list[Violation]]:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for o in objects:
        by_kind.setdefault(o.get("kind", ""), []).append(o)
    gateways = {f"{g['metadata'].get('namespace', 'default')}/{g['metadata']['name']}" for g in by_kind.get("Gateway", [])}
    services = {(s["metadata"].get("namespace", "default"), s["metadata"]["name"]): s for s in by_kind.get("Service", [])}
    subsets: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
    for dr in by_kind.get("DestinationRule", []):
        key = _service_key(dr["spec"]["host"], dr["metadata"].get("namespace", "default"))
        subsets[key] = {s["name"]: s.get("labels") or {} for s in dr["spec"].get("subsets") or []}
    pods = [
        (o["metadata"].get("namespace", "default"), _labels(o))
        for kind in ("Deployment", "StatefulSet", "DaemonSet", "Pod")
        for o in by_kind.get(kind, [])
    ]
    routes: set[Route] = set()
    violations: list[Violation] = []

    servers = gateway_servers(objects, proxy_namespace)
    shadowed: dict[tuple[str, int, str], str] = {}
    for server in servers:
        for vh in server.virtual_hosts:
            reachable = vh.reachable()
            for r in reachable:
                routes.update(Route(vh.domain, r.path, svc, subset, w) for svc, subset, w in r.destinations)
            if vh.require_tls or not reachable or not reachable[-1].catch_all:
                continue
            first = reachable[-1]
            for r in vh.routes[len(reachable) :]:
                shadowed.setdefault(
                    (r.source, r.index, r.path),
                    f"http[{r.index}] {r.path} never answers for host {vh.domain} on port {server.port} "
                    f"(route configuration {server.route_config}): {first.source} http[{first.index}] catches "
                    "every path first",
                )
        if not server.routed:
            why = "; ".join(server.bound) or "no VirtualService binds to it"
            violations.append(
                Violation(
                    "routing",
                    f"Gateway {server.gateway}",
                    f"server port {server.port} ({server.protocol}) hosts {server.hosts} gets no route, so istiod "
                    f"answers 404 there: {why}",
                )
            )

    violations += [Violation("routing", source, message) for (source, _, _), message in sorted(shadowed.items())]

    for vs in by_kind.get("VirtualService", []):
        ns, where = vs["metadata"].get("namespace", "default"), ref(vs)
        spec = vs.get("spec") or {}
        refs = [resolve_gateway(g, ns) for g in spec.get("gateways") or [MESH]]
        for g in refs:
            if g != MESH and g not in gateways:
                violations.append(Violation("routing", where, f"binds to gateway {g!r}, which does not exist"))
        if MESH in refs and "*" in (spec.get("hosts") or []):
            # validateVirtualService (pkg/config/validation/validation.go) rejects it at admission.
            violations.append(Violation("routing", where, "host '*' is not allowed on a VirtualService bound to the mesh"))
        if MESH in refs:
            # Sidecars route a VirtualService host that names a Service of the registry.
            mesh_hosts = [h for h in (resolve_host(x, ns) for x in spec.get("hosts") or []) if _service_key(h, ns) in services]
            for r in _reachable(build_routes(vs, None, MESH)):
                routes.update(Route(h, r.path, svc, subset, w) for h in mesh_hosts for svc, subset, w in r.destinations)
        for i, http in enumerate(spec.get("http") or []):
            dests = http.get("route") or []
            total = sum(_weights(dests))
            if dests and total != 100:
                violations.append(Violation("routing", where, f"http[{i}] weights sum to {total}, not 100"))
            for d in dests:
                dest = d.get("destination") or {}
                violations += _resolve(
                    where, i, _service_key(dest.get("host", ""), ns), dest.get("subset", ""), services, subsets, pods
                )
    # A Gateway whose selector matches several gateway workloads is judged once per workload.
    return sorted(routes), list(dict.fromkeys(violations))


def _reachable(routes: list[HttpRoute]) -> list[HttpRoute]:
    return VirtualHost("", routes).reachable()


def _resolve(where, i, svc_key, subset, services, subsets, pods) -> list[Violation]:
    svc = services.get(svc_key)
    name = f"{svc_key[0]}/{svc_key[1]}"
    if svc is None:
        return [Violation("routing", where, f"http[{i}] routes to {name}, which has no Service")]
    selector = (svc.get("spec") or {}).get("selector") or {}
    wanted = dict(selector)
    if subset:
        known = subsets.get(svc_key)
        if known is None or subset not in known:
            return [Violation("routing", where, f"http[{i}] names subset {subset!r} of {name}, which no DestinationRule defines")]
        wanted.update(known[subset])
    if not any(ns == svc_key[0] and all(labels.get(k) == v for k, v in wanted.items()) for ns, labels in pods):
        return [Violation("routing", where, f"http[{i}] subset {subset or '*'} of {name} selects no pods (labels {wanted})")]
    return []


def _domain_rank(domain: str, host: str) -> tuple[int, int] | None:
    """Envoy's virtual host choice: the exact domain, then the longest ``*.suffix``, then ``*``."""
    if domain == host:
        return (0, 0)
    if domain.startswith("*") and host.endswith(domain[1:]):
        return (2 if domain == "*" else 1, -len(domain))
    return None


def _path_matches(route: HttpRoute, path: str) -> bool:
    if route.kind == "exact":
        return path == route.path
    if route.kind == "regex":
        return re.fullmatch(route.path[1:], path) is not None
    return path.startswith(route.path)


def answer(servers: list[Server], port: int, host: str, path: str) -> str:
    """What the gateway does with a request to ``host`` on ``port`` for ``path``: ``<ns/service>
    <subset> <weight>%`` per destination (comma-separated), ``redirect <url>``, ``404`` or ``no listener``."""
    candidates = [s for s in servers if s.port == port]
    if any(s.protocol == "HTTPS" for s in candidates):  # SNI picks the HTTPS server by its hosts
        candidates = [s for s in candidates if any(_domain_rank(h.split("/")[-1], host) for h in s.hosts)]
    if not candidates:
        return "no listener"
    ranked = sorted(
        (rank, vh.domain) for vh in candidates[0].virtual_hosts if (rank := _domain_rank(vh.domain, host)) is not None
    )
    if not ranked:
        return "404"
    vh = next(v for v in candidates[0].virtual_hosts if v.domain == ranked[0][1])
    if vh.require_tls:
        return f"redirect https://{host}{path}"
    for r in vh.reachable():
        if _path_matches(r, path):
            if r.redirect is not None:
                return f"redirect {r.redirect.replace('://', '://' + host, 1)}{path}"
            return ", ".join(f"{svc} {subset} {w}%" for svc, subset, w in r.destinations)
    return "404"
