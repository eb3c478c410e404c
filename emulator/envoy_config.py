"""An Envoy bootstrap configuration, read for what the emulator models: its Wasm filters.

Users already have an ``envoy.yaml`` for their filter. :func:`read_envoy_config` reads one (YAML
or JSON, the v3 API's shape, static resources) and returns, for one listener, every
``envoy.filters.http.wasm`` filter of its HTTP connection managers and every
``envoy.filters.network.wasm`` filter, in the order written, with:

- ``config.name``, ``root_id``, ``vm_config.vm_id``, ``runtime``;
- ``vm_config.code.local`` (``filename``, ``inline_bytes``, ``inline_string``);
- ``vm_config.configuration`` and ``vm_config.environment_variables``;
- ``configuration``, ``fail_open`` / ``failure_policy`` and ``allowed_capabilities``;

plus the names of the static clusters (the callout targets a filter may use) and, for ``serve``,
the listener's address, its routes (``prefix`` and ``path`` matches to a cluster, or a direct
response) and the clusters' endpoints. What the emulator does not model is listed once in
:attr:`EnvoyConfig.warnings`: other HTTP filters, other route matches, TLS. A malformed file, a missing ``.wasm`` or an unsupported
runtime raises :class:`EnvoyConfigError` naming the place in the file, e.g.
``static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[1]``.

:meth:`Host.from_envoy_config <emulator.host.Host.from_envoy_config>` builds the filters as Envoy
does: plugins whose VM settings are the same share one VM, HTTP filters form a
:class:`~emulator.http.chain.FilterChain` in configuration order.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from abi.records import field, record

from .errors import PlacedConfigError

__all__ = ["EnvoyChain", "EnvoyConfig", "EnvoyConfigError", "Route", "WasmFilter", "build_filters", "read_envoy_config"]

_HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_HTTP_WASM = "envoy.extensions.filters.http.wasm.v3.Wasm"
_NETWORK_WASM = "envoy.extensions.filters.network.wasm.v3.Wasm"
_TYPED_STRUCT = ("udpa.type.v1.TypedStruct", "xds.type.v3.TypedStruct")
_ROUTER = "envoy.extensions.filters.http.router.v3.Router"
_RUNTIMES = {"", "envoy.wasm.runtime.v8", "envoy.wasm.runtime.wasmtime", "envoy.wasm.runtime.wamr", "envoy.wasm.runtime.wavm"}
"""The runtimes a compiled module runs on; the emulator stands in for each of them."""


class EnvoyConfigError(PlacedConfigError):
    """An Envoy configuration the emulator cannot use: names the place in the file and the problem."""


@record
class WasmFilter:
    """One Wasm filter of the configuration, with the settings Envoy would give its plugin."""

    where: str
    """Its place in the file (a YAML path)."""
    kind: str
    """``http`` or ``network``."""
    module: Path | bytes
    """The ``.wasm`` file, or the inline bytes."""
    name: str = ""
    root_id: str = ""
    vm_id: str = ""
    runtime: str = ""
    vm_configuration: bytes = b""
    environment: dict[str, str] = field(default_factory=dict)
    configuration: bytes = b""
    fail_policy: str = "FAIL_CLOSED"
    allowed_capabilities: list[str] | None = None

    def vm_key(self) -> tuple[Any, ...]:
        """What makes two plugins share a VM in Envoy: the same VM id, code and VM settings."""
        code = self.module if isinstance(self.module, bytes) else str(self.module)
        return (self.vm_id, self.runtime, code, self.vm_configuration, tuple(sorted(self.environment.items())))

    def overrides(self) -> dict[str, Any]:
        """The command line's plugin settings for this filter (what ``run`` takes by hand)."""
        return {
            "plugin_config": self.configuration,
            "vm_config": self.vm_configuration,
            "root_id": self.root_id,
            "vm_id": self.vm_id,
            "name": self.name,
            "environment": dict(self.environment),
            "fail_policy": self.fail_policy,
            "allowed_capabilities": self.allowed_capabilities,
        }


@record
class Route:
    """One route of the listener: requests whose path matches go to ``cluster`` (or get ``direct``)."""

    where: str
    match: str  # "prefix" or "path"
    value: str
    cluster: str | None = None
    direct: tuple[int, bytes] | None = None  # direct_response: status and body

    def matches(self, path: str) -> bool:
        """Whether a request path (its query ignored for ``path``, as Envoy does) takes this route."""
        if self.match == "prefix":
            return path.startswith(self.value)
        return path.split("?", 1)[0] == self.value


@record
class EnvoyConfig:
    """The parts of an Envoy bootstrap the emulator runs (see the module docstring)."""

    path: Path
    listener: str
    filters: list[WasmFilter]
    clusters: list[str]
    warnings: list[str] = field(default_factory=list)
    address: tuple[str, int] | None = None
    """The listener's ``socket_address`` (``serve`` listens there, on loopback)."""
    routes: list[Route] = field(default_factory=list)
    """The listener's routes in order; the first that matches a path wins."""
    endpoints: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    """Each static cluster's endpoints (``load_assignment``)."""

    def route(self, path: str) -> Route | None:
        """The route a request path takes (``None``: no route, Envoy answers 404)."""
        return next((r for r in self.routes if r.matches(path)), None)

    @property
    def http_filters(self) -> list[WasmFilter]:
        """The Wasm HTTP filters, in chain order."""
        return [f for f in self.filters if f.kind == "http"]


def read_envoy_config(path: str | Path, listener: str | None = None) -> EnvoyConfig:
    """Read the Wasm filters of one listener (``None``: the first that has any) and the clusters."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise EnvoyConfigError(str(p), f"cannot read the configuration: {exc.strerror or exc}") from None
    try:
        if p.suffix == ".json":
            doc = json.loads(text)
        else:
            import yaml

            doc = yaml.safe_load(text)
    except ValueError as exc:
        raise EnvoyConfigError(str(p), f"not valid JSON: {exc}") from None
    except Exception as exc:  # yaml.YAMLError
        raise EnvoyConfigError(str(p), f"not valid YAML: {exc}") from None
    reader = _Reader(p)
    return reader.read(doc, listener)


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.warnings: dict[str, None] = {}

    def warn(self, message: str) -> None:
        self.warnings.setdefault(message, None)

    def read(self, doc: Any, wanted: str | None) -> EnvoyConfig:
        static = _map(_map(doc, "the configuration").get("static_resources"), "static_resources")
        listeners = _list(static.get("listeners", []), "static_resources.listeners")
        clusters = []
        endpoints: dict[str, list[tuple[str, int]]] = {}
        for i, cluster in enumerate(_list(static.get("clusters", []), "static_resources.clusters")):
            where = f"static_resources.clusters[{i}]"
            c = _map(cluster, where)
            name = _str(c.get("name"), f"{where}.name")
            clusters.append(name)
            endpoints[name] = self._endpoints(c, where)
            if c.get("transport_socket"):
                self.warn(f"{where}.transport_socket: TLS to upstreams is not modelled")
        shared = dict(self.warnings)  # the clusters' own, whichever listener is chosen
        found: list[tuple[str, list[WasmFilter]]] = []
        per_listener: dict[str, list[str]] = {}
        extras: dict[str, tuple[tuple[str, int] | None, list[Route]]] = {}
        for i, listener in enumerate(listeners):
            where = f"static_resources.listeners[{i}]"
            lst = _map(listener, where)
            name = str(lst.get("name", f"listener {i}"))
            self.warnings = {}
            self.routes: list[Route] = []
            filters = self._listener(lst, where)
            per_listener[name] = list(self.warnings)
            found.append((name, filters))
            extras[name] = (_socket_address(lst.get("address"), f"{where}.address"), self.routes)
        if wanted is not None:
            chosen = next(((n, f) for n, f in found if n == wanted), None)
            if chosen is None:
                raise EnvoyConfigError("static_resources.listeners", f"no listener named {wanted!r}; the listeners are {[n for n, _ in found]}")
        else:
            chosen = next(((n, f) for n, f in found if f), None)
            if chosen is None:
                raise EnvoyConfigError("static_resources.listeners", "no listener has a Wasm filter (envoy.filters.http.wasm or envoy.filters.network.wasm)")
        name, filters = chosen
        address, routes = extras[name]
        return EnvoyConfig(self.path, name, filters, clusters, [*per_listener.get(name, []), *shared], address, routes, endpoints)

    def _endpoints(self, c: dict[str, Any], where: str) -> list[tuple[str, int]]:
        out = []
        assignment = _map(c.get("load_assignment") or {}, f"{where}.load_assignment")
        for i, group in enumerate(_list(assignment.get("endpoints", []), f"{where}.load_assignment.endpoints")):
            gwhere = f"{where}.load_assignment.endpoints[{i}]"
            for j, lb in enumerate(_list(_map(group, gwhere).get("lb_endpoints", []), f"{gwhere}.lb_endpoints")):
                ewhere = f"{gwhere}.lb_endpoints[{j}].endpoint.address"
                endpoint = _map(_map(lb, ewhere).get("endpoint") or {}, ewhere)
                addr = _socket_address(endpoint.get("address"), ewhere)
                if addr is not None:
                    out.append(addr)
        return out

    def _routes(self, route_config: dict[str, Any], where: str) -> None:
        for i, vh in enumerate(_list(route_config.get("virtual_hosts", []), f"{where}.virtual_hosts")):
            vwhere = f"{where}.virtual_hosts[{i}]"
            v = _map(vh, vwhere)
            if [d for d in v.get("domains", ["*"]) if d != "*"]:
                self.warn(f"{vwhere}.domains: virtual hosts are not told apart by domain; every route of every virtual host applies")
            for j, rt in enumerate(_list(v.get("routes", []), f"{vwhere}.routes")):
                rwhere = f"{vwhere}.routes[{j}]"
                r = _map(rt, rwhere)
                match = _map(r.get("match") or {}, f"{rwhere}.match")
                kind = "prefix" if "prefix" in match else "path" if "path" in match else None
                if kind is None or set(match) - {"prefix", "path"}:
                    self.warn(f"{rwhere}.match: only prefix and path matches are modelled; the route is skipped")
                    continue
                value = _str(match[kind], f"{rwhere}.match.{kind}")
                if "direct_response" in r:
                    d = _map(r["direct_response"], f"{rwhere}.direct_response")
                    body = _map(d.get("body") or {}, f"{rwhere}.direct_response.body").get("inline_string", "")
                    self.routes.append(Route(rwhere, kind, value, direct=(int(d.get("status", 200)), str(body).encode())))
                    continue
                target = _map(r.get("route") or {}, f"{rwhere}.route")
                if "cluster" not in target:
                    self.warn(f"{rwhere}.route: only a single cluster is modelled (not weighted clusters or headers); the route is skipped")
                    continue
                self.routes.append(Route(rwhere, kind, value, cluster=_str(target["cluster"], f"{rwhere}.route.cluster")))

    def _listener(self, lst: dict[str, Any], where: str) -> list[WasmFilter]:
        out: list[WasmFilter] = []
        for j, chain in enumerate(_list(lst.get("filter_chains", []), f"{where}.filter_chains")):
            cwhere = f"{where}.filter_chains[{j}]"
            ch = _map(chain, cwhere)
            if ch.get("transport_socket"):
                self.warn(f"{cwhere}.transport_socket: TLS is not modelled (the emulator sees plain HTTP)")
            for k, flt in enumerate(_list(ch.get("filters", []), f"{cwhere}.filters")):
                fwhere = f"{cwhere}.filters[{k}]"
                f = _map(flt, fwhere)
                kind, typed = _typed(f.get("typed_config"), f"{fwhere}.typed_config")
                if kind == _HCM:
                    out += self._hcm(typed, f"{fwhere}.typed_config")
                elif kind == _NETWORK_WASM:
                    out.append(self._wasm(typed, f"{fwhere}.typed_config", "network"))
                else:
                    self.warn(f"{fwhere}: the network filter {f.get('name') or kind!r} is not modelled")
        return out

    def _hcm(self, hcm: dict[str, Any], where: str) -> list[WasmFilter]:
        out = []
        if hcm.get("rds"):
            self.warn(f"{where}.rds: routes from RDS are not read; only a static route_config is")
        if hcm.get("route_config"):
            self._routes(_map(hcm["route_config"], f"{where}.route_config"), f"{where}.route_config")
        for i, hf in enumerate(_list(hcm.get("http_filters", []), f"{where}.http_filters")):
            hwhere = f"{where}.http_filters[{i}]"
            h = _map(hf, hwhere)
            if h.get("typed_config") is None:
                if h.get("name") not in ("envoy.filters.http.router", "envoy.router"):
                    self.warn(f"{hwhere}: the HTTP filter {h.get('name')!r} is not modelled")
                continue
            kind, typed = _typed(h["typed_config"], f"{hwhere}.typed_config")
            if kind == _HTTP_WASM:
                out.append(self._wasm(typed, f"{hwhere}.typed_config", "http"))
            elif kind != _ROUTER:
                self.warn(f"{hwhere}: the HTTP filter {h.get('name') or kind!r} is not modelled")
        return out

    def _wasm(self, typed: dict[str, Any], where: str, kind: str) -> WasmFilter:
        cwhere = f"{where}.config"
        cfg = _map(typed.get("config"), cwhere)
        vwhere = f"{cwhere}.vm_config"
        vm = _map(cfg.get("vm_config"), vwhere)
        runtime = str(vm.get("runtime", ""))
        if runtime == "envoy.wasm.runtime.null":
            raise EnvoyConfigError(f"{vwhere}.runtime", "the null runtime runs filters compiled into Envoy itself, not a .wasm module: nothing to emulate")
        if runtime not in _RUNTIMES:
            raise EnvoyConfigError(f"{vwhere}.runtime", f"unknown runtime {runtime!r}; one of {sorted(r for r in _RUNTIMES if r)}")
        module = self._code(_map(vm.get("code"), f"{vwhere}.code"), f"{vwhere}.code")
        env = {}
        ewhere = f"{vwhere}.environment_variables"
        if vm.get("environment_variables") is not None:
            ev = _map(vm["environment_variables"], ewhere)
            for key in _list(ev.get("host_env_keys", []), f"{ewhere}.host_env_keys"):
                if key in os.environ:  # Envoy copies the keys its own process has
                    env[str(key)] = os.environ[key]
            env.update({str(k): str(v) for k, v in _map(ev.get("key_values", {}), f"{ewhere}.key_values").items()})
        policy = "FAIL_CLOSED"
        if cfg.get("fail_open"):
            policy = "FAIL_OPEN"
        if cfg.get("failure_policy") is not None:
            policy = str(cfg["failure_policy"]).upper()
            if policy not in ("FAIL_CLOSED", "FAIL_OPEN", "FAIL_RELOAD", "UNSPECIFIED"):
                raise EnvoyConfigError(f"{cwhere}.failure_policy", f"expected FAIL_CLOSED, FAIL_OPEN or FAIL_RELOAD, got {policy!r}")
            policy = "FAIL_CLOSED" if policy == "UNSPECIFIED" else policy
        caps = None
        if cfg.get("allowed_capabilities") is not None:
            caps = sorted(_map(cfg["allowed_capabilities"], f"{cwhere}.allowed_capabilities"))
        return WasmFilter(
            where=where,
            kind=kind,
            module=module,
            name=str(cfg.get("name", "")),
            root_id=str(cfg.get("root_id", "")),
            vm_id=str(vm.get("vm_id", "")),
            runtime=runtime,
            vm_configuration=_any_bytes(vm.get("configuration"), f"{vwhere}.configuration"),
            environment=env,
            configuration=_any_bytes(cfg.get("configuration"), f"{cwhere}.configuration"),
            fail_policy=policy,
            allowed_capabilities=caps,
        )

    def _code(self, code: dict[str, Any], where: str) -> Path | bytes:
        if code.get("remote") is not None:
            raise EnvoyConfigError(f"{where}.remote", "remote code is fetched by Envoy over HTTP; download it and use code.local.filename")
        local = _map(code.get("local"), f"{where}.local")
        if "filename" in local:
            name = Path(_str(local["filename"], f"{where}.local.filename"))
            candidates = [name] if name.is_absolute() else [self.path.parent / name, name]
            for c in candidates:
                if c.is_file():
                    return c
            raise EnvoyConfigError(
                f"{where}.local.filename", f"no such file {str(name)!r} (a relative path is read from the configuration's folder, then the current one)"
            )
        if "inline_bytes" in local:
            try:
                return base64.b64decode(_str(local["inline_bytes"], f"{where}.local.inline_bytes"), validate=True)
            except ValueError:
                raise EnvoyConfigError(f"{where}.local.inline_bytes", "not base64 (the v3 API's bytes fields are base64 in YAML and JSON)") from None
        if "inline_string" in local:
            return _str(local["inline_string"], f"{where}.local.inline_string").encode()
        raise EnvoyConfigError(f"{where}.local", "needs filename, inline_bytes or inline_string")


def _socket_address(value: Any, where: str) -> tuple[str, int] | None:
    """``{socket_address: {address, port_value}}`` as ``(address, port)``; ``None`` if absent."""
    if value is None:
        return None
    sa = _map(_map(value, where).get("socket_address") or {}, f"{where}.socket_address")
    if "port_value" not in sa:
        return None
    try:
        return _str(sa.get("address", "127.0.0.1"), f"{where}.socket_address.address"), int(sa["port_value"])
    except (TypeError, ValueError):
        raise EnvoyConfigError(f"{where}.socket_address.port_value", f"not a port number: {sa['port_value']!r}") from None


def _typed(value: Any, where: str) -> tuple[str, dict[str, Any]]:
    """``(message type, fields)`` of a ``typed_config`` (``@type``, or a TypedStruct's ``type_url``)."""
    t = _map(value, where)
    kind = str(t.get("@type", "")).rsplit("/", 1)[-1]
    if kind in _TYPED_STRUCT:
        return str(t.get("type_url", "")).rsplit("/", 1)[-1], _map(t.get("value", {}), f"{where}.value")
    return kind, t


def _any_bytes(value: Any, where: str) -> bytes:
    """What a plugin reads from a ``google.protobuf.Any`` configuration, as Envoy passes it: a
    StringValue's or BytesValue's ``value``, or the JSON of any other message."""
    if value is None:
        return b""
    if isinstance(value, str):
        return value.encode()
    v = _map(value, where)
    kind = str(v.get("@type", "")).rsplit("/", 1)[-1]
    if kind == "google.protobuf.StringValue":
        return str(v.get("value", "")).encode()
    if kind == "google.protobuf.BytesValue":
        try:
            return base64.b64decode(str(v.get("value", "")), validate=True)
        except ValueError:
            raise EnvoyConfigError(f"{where}.value", "a BytesValue's value is base64") from None
    if "value" in v and len(v) == 2:
        value = v["value"]
        return value.encode() if isinstance(value, str) else json.dumps(value, separators=(",", ":")).encode()
    return json.dumps({k: x for k, x in v.items() if k != "@type"}, separators=(",", ":")).encode()


def _map(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EnvoyConfigError(where, f"expected a mapping, got {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if isinstance(value, dict):  # one item for a repeated field: protobuf's JSON reader takes it (the Rust SDK examples' `listeners:`)
        return [value]
    if not isinstance(value, list):
        raise EnvoyConfigError(where, f"expected a list, got {type(value).__name__}")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise EnvoyConfigError(where, "expected a non-empty string")
    return value


@record
class EnvoyChain:
    """What :meth:`Host.from_envoy_config <emulator.host.Host.from_envoy_config>` built."""

    host: Any
    config: EnvoyConfig
    plugins: list[Any]
    """Every filter's plugin, in configuration order (HTTP and network)."""
    chain: Any
    """The HTTP filters as a :class:`~emulator.http.chain.FilterChain` (``None`` without any)."""

    @property
    def warnings(self) -> list[str]:
        """What the file holds that the emulator does not model, once each."""
        return self.config.warnings

    def http_stream(self) -> Any:
        """A new stream through every Wasm HTTP filter of the listener."""
        if self.chain is None:
            raise EnvoyConfigError(self.config.listener, "the listener has no Wasm HTTP filter")
        return self.chain.http_stream()


def build_filters(host: Any, config: EnvoyConfig) -> EnvoyChain:
    """Create the VMs and plugins of ``config`` on ``host``: plugins with the same VM settings
    share a VM, as Envoy's ``vm_id``-keyed VMs do; the static clusters become the known ones."""
    from .http.chain import FilterChain

    host.clusters = set(config.clusters)
    vms: dict[tuple[Any, ...], Any] = {}
    plugins = []
    for f in config.filters:
        vm = vms.get(f.vm_key())
        if vm is None:
            vm = vms[f.vm_key()] = host.create_vm(
                f.module, vm_id=f.vm_id, vm_config=f.vm_configuration, environment=f.environment, allowed_capabilities=f.allowed_capabilities
            )
        plugins.append(host.add_plugin(vm, root_id=f.root_id, name=f.name, plugin_config=f.configuration, fail_policy=f.fail_policy))
    http = [p for p, f in zip(plugins, config.filters, strict=True) if f.kind == "http"]
    return EnvoyChain(host, config, plugins, FilterChain(http) if http else None)
