#!/usr/bin/env python3
"""Holds the OCI emulator and k8s-oci-operator's OCI client against OCI's
official Python SDK (PyPI `oci`, pinned in requirements.txt).

1. The official clients, pointed at the emulator, make every call the operator
   makes. Each answer must deserialise into the SDK's models with the fields we
   rely on set, lifecycle states inside the models' enums, only fields the
   models know, every field the API reference marks required, and OCI's headers
   (opc-request-id, etag, opc-next-page) and error codes.
2. With --operator-requests (written by tests/oci-emulator/tests/conformance.rs):
   every request the operator's client sent must be one the SDK would send for
   the same call (path, query, headers, body, signed headers), and every field
   and enum value the operator's models read must exist in the official models.

Only the standard library and `oci`. Talks only to the given endpoint.
Prints one line per check and exits 1 when any failed (all are run).
"""

import argparse
import ast
import datetime
import inspect
import ipaddress
import json
import os
import re
import sys
import time
import urllib.parse
import uuid

import oci

# The sandbox world: tests/oci-emulator/seeds/sandbox.yaml.
COMPARTMENT = "ocid1.compartment.oc1..sandbox"
AD = "EMU:US-SANDBOX-1-AD-1"
POOL = "ocid1.publicippool.oc1.sandbox.pool1"
POOL_CIDR = ipaddress.ip_network("203.0.113.0/28")
SPECIFIC_ID = "ocid1.publicip.oc1.sandbox.specific"
SPECIFIC_ADDRESS = "198.51.100.77"
PODS_SUBNET = "ocid1.subnet.oc1.sandbox.pods"
PRIVATE_SUBNET = "ocid1.subnet.oc1.sandbox.private"
NODE0 = "ocid1.instance.oc1.sandbox.node0"
NODE0_PODS_VNIC = "ocid1.vnic.oc1.sandbox.node0-pods"
NODE0_PRIMARY_VNIC = "ocid1.vnic.oc1.sandbox.node0-primary"
NODE0_PRIMARY_IP = "ocid1.privateip.oc1.sandbox.node0-primary"
PRIVATE0_IP = "ocid1.privateip.oc1.sandbox.private0-primary"
# node0-pods: its primary IP, 256 pod IPs 10.0.65.0/24 and 4 of 10.0.68.0/30.
NODE0_PODS_PRIVATE_IPS = 261
MISSING = {
    "public_ip": "ocid1.publicip.oc1.us-sandbox-1.doesnotexist",
    "private_ip": "ocid1.privateip.oc1.us-sandbox-1.doesnotexist",
    "vnic": "ocid1.vnic.oc1.sandbox.doesnotexist",
    "subnet": "ocid1.subnet.oc1.sandbox.doesnotexist",
    "pool": "ocid1.publicippool.oc1.sandbox.doesnotexist",
}


def pod_ip(host):
    """The seed's id of node0's pod private IP 10.0.65.<host>."""
    return f"ocid1.privateip.oc1.us-sandbox-1.10-0-65-{host}"


# OCI's documented error codes by status (API reference, "API Errors").
DOCUMENTED_CODES = {
    400: {"CannotParseRequest", "InvalidParameter", "LimitExceeded", "MissingParameter",
          "QuotaExceeded", "RelatedResourceNotAuthorizedOrNotFound"},
    401: {"NotAuthenticated"},
    403: {"NotAllowed", "NotAuthorized", "SignUpRequired"},
    404: {"InvalidParameter", "NotAuthorizedOrNotFound", "NotFound", "NamespaceNotFound"},
    405: {"MethodNotAllowed"},
    409: {"Conflict", "ExternalServerIncorrectState", "IncorrectState",
          "InvalidatedRetryToken", "NotAuthorizedOrResourceAlreadyExists"},
    412: {"NoEtagMatch"},
    413: {"PayloadTooLarge"},
    429: {"TooManyRequests"},
    500: {"InternalServerError"},
    501: {"MethodNotImplemented"},
    503: {"ServiceUnavailable"},
}

# Operations whose answer carries an etag (the API reference's response
# headers; the Go SDK's <Op>Response structs show them as `Etag`).
ETAG_OPERATIONS = {
    "create_public_ip", "get_public_ip", "get_public_ip_by_ip_address",
    "get_public_ip_by_private_ip_id", "update_public_ip", "get_private_ip",
    "get_vnic", "get_subnet", "get_public_ip_pool",
}

# Headers the HTTP layer or the signature adds; not part of an operation's
# definition in the SDK.
TRANSPORT_HEADERS = {"host", "date", "authorization", "content-length", "x-content-sha256",
                     "user-agent", "accept-encoding", "connection", "opc-client-info"}

GENERIC_KWARGS = {"allow_control_chars", "enable_strict_url_encoding", "retry_strategy"}


class Report:
    def __init__(self):
        self.passed = 0
        self.failures = []

    def check(self, name, problems):
        """One check: `problems` is a list of strings (or a bool, True = ok)."""
        if problems is True:
            problems = []
        elif problems is False:
            problems = ["failed"]
        if problems:
            text = "; ".join(str(p) for p in problems)
            print(f"FAIL {name}: {text}", flush=True)
            self.failures.append(f"{name}: {text}")
        else:
            print(f"ok   {name}", flush=True)
            self.passed += 1
        return not problems


# ----- what the SDK defines ---------------------------------------------------

def camel_to_snake(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class SdkOperation:
    """One client method of the SDK, read from its generated source."""

    def __init__(self, client, name):
        self.client = client
        self.name = name
        fn = getattr(type(client), name)
        src = method_sources(type(client))[name]
        self.http_method = re.search(r'\n\s+method = "(\w+)"', src).group(1)
        self.resource_path = re.search(r'\n\s+resource_path = "([^"]+)"', src).group(1)
        kwargs = re.search(r"expected_kwargs = \[(.*?)\]", src, re.S)
        self.kwargs = set(re.findall(r'"(\w+)"', kwargs.group(1))) if kwargs else set()
        self.query = self._param_map(src, "query_params")
        self.headers = self._param_map(src, "header_params")
        response = re.search(r'response_type="([^"]+)"', src)
        self.response_type = response.group(1) if response else None
        body = re.search(r":param oci\.\w+\.models\.(\w+) (\w+): \(required\)", src)
        self.body_model, self.body_param = (body.group(1), body.group(2)) if body else (None, None)
        self.positional = [p for p in inspect.signature(fn).parameters if p not in ("self", "kwargs")]

    @staticmethod
    def _param_map(src, which):
        """{wire name: kwarg name or a constant value} of query_params/header_params."""
        block = re.search(which + r" = \{(.*?)\n        \}", src, re.S)
        found = {}
        if not block:
            return found
        for wire, rhs in re.findall(r'"([\w-]+)": ([^\n]+?),?\n', block.group(1) + "\n"):
            kw = re.match(r'kwargs\.get\("(\w+)"', rhs)
            if kw:
                found[wire] = ("kwarg", kw.group(1))
            elif rhs.startswith('"'):
                found[wire] = ("constant", rhs.strip('"'))
            else:
                found[wire] = ("argument", rhs.strip())
        return found

    def path_regex(self):
        parts = re.split(r"(\{\w+\})", self.resource_path)
        pattern = "".join(f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts)
        return re.compile("^" + pattern + "$")

    def literal_segments(self):
        return sum(1 for s in self.resource_path.split("/") if s and not s.startswith("{"))


_SOURCES = {}


def method_sources(cls):
    """{method name: its source} of a generated client class, split as text
    (inspect.getsource per method would tokenize the file hundreds of times)."""
    if cls not in _SOURCES:
        with open(inspect.getsourcefile(cls)) as f:
            text = f.read()
        chunks = re.split(r"\n    def ", text)
        _SOURCES[cls] = {m.group(1): chunk for chunk in chunks[1:] if (m := re.match(r"(\w+)\(self", chunk))}
    return _SOURCES[cls]


def sdk_operations(clients):
    """Every API operation of the given clients, as (client, method name)."""
    ops = []
    for client in clients:
        for name, body in method_sources(type(client)).items():
            if not name.startswith("_") and 'resource_path = "' in body and '\n        method = "' in body:
                ops.append((client, name))
    return ops


def model_class(name):
    return getattr(oci.core.models, name)


def allowed_values(cls, attr):
    """The enum of a model's field (its setter's allowed_values), or None."""
    prop = getattr(cls, attr, None)
    if not isinstance(prop, property) or prop.fset is None:
        return None
    found = re.search(r"allowed_values = (\[[^\]]*\])", inspect.getsource(prop.fset))
    return ast.literal_eval(found.group(1)) if found else None


def required_fields(cls):
    """Fields the API reference marks required (the SDK's docstrings say so)."""
    return [attr for attr in cls().attribute_map
            if "**[Required]**" in (getattr(cls, attr).fget.__doc__ or "")]


# ----- the wire -----------------------------------------------------------------

class Exchange:
    def __init__(self, response):
        request = response.request
        self.method = request.method
        self.url = request.url
        self.request_headers = {k.lower(): v for k, v in request.headers.items()}
        self.status = response.status_code
        self.headers = {k.lower(): v for k, v in response.headers.items()}
        self.text = response.text

    def __str__(self):
        path = urllib.parse.urlsplit(self.url)
        return f"{self.method} {path.path}{'?' + path.query if path.query else ''} -> {self.status}"


class Recorder:
    """Keeps every request the SDK sent and its answer, as on the wire."""

    def __init__(self):
        self.exchanges = []

    def attach(self, client):
        client.base_client.session.hooks["response"].append(self._hook)

    def _hook(self, response, *args, **kwargs):
        self.exchanges.append(Exchange(response))

    def mark(self):
        return len(self.exchanges)

    def since(self, mark):
        return self.exchanges[mark:]


def model_problems(value, swagger_type, path):
    """Problems of raw JSON `value` against the SDK's type: unknown or missing
    required fields, nested."""
    problems = []
    if value is None:
        return problems
    if swagger_type.startswith("list["):
        if not isinstance(value, list):
            return [f"{path}: expected a JSON array"]
        for i, item in enumerate(value):
            problems += model_problems(item, swagger_type[5:-1], f"{path}[{i}]")
        return problems
    if not hasattr(oci.core.models, swagger_type):
        return problems
    cls = model_class(swagger_type)
    if not isinstance(value, dict):
        return [f"{path}: expected a JSON object for {swagger_type}"]
    instance = cls()
    known = set(instance.attribute_map.values())
    for key in value:
        if key not in known:
            problems.append(f"{path}.{key} is not a field of {swagger_type}")
    for attr in required_fields(cls):
        if value.get(instance.attribute_map[attr]) is None:
            problems.append(f"{path}.{instance.attribute_map[attr]} is required by {swagger_type} but missing")
    for attr, attr_type in instance.swagger_types.items():
        wire = instance.attribute_map[attr]
        if wire in value:
            problems += model_problems(value[wire], attr_type, f"{path}.{wire}")
    return problems


def unknown_enums(obj, path="data"):
    """Fields the SDK mapped to UNKNOWN_ENUM_VALUE, and datetimes it could not parse."""
    problems = []
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            problems += unknown_enums(item, f"{path}[{i}]")
        return problems
    if not hasattr(obj, "swagger_types"):
        return problems
    for attr, attr_type in obj.swagger_types.items():
        value = getattr(obj, attr)
        if value == "UNKNOWN_ENUM_VALUE":
            problems.append(f"{path}.{attr} is not a value of the model's enum")
        elif attr_type == "datetime" and value is not None and not isinstance(value, datetime.datetime):
            problems.append(f"{path}.{attr} is not a timestamp: {value!r}")
        elif value is not None:
            problems += unknown_enums(value, f"{path}.{attr}")
    return problems


# ----- the conformance run ------------------------------------------------------

class Conformance:
    def __init__(self, endpoint, config, report):
        self.report = report
        self.recorder = Recorder()
        # No retries and no circuit breaker: every answer is seen as sent.
        options = dict(service_endpoint=endpoint, retry_strategy=oci.retry.NoneRetryStrategy(),
                       circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy(),
                       timeout=(5, 10))
        self.vn = oci.core.VirtualNetworkClient(config, **options)
        self.compute = oci.core.ComputeClient(config, **options)
        self.recorder.attach(self.vn)
        self.recorder.attach(self.compute)
        self.config = config
        self.options = options
        self.dry_clients = {}
        self.captured = []
        self.ops = {}
        for client in (self.vn, self.compute):
            for name in ("create_public_ip", "get_public_ip", "get_public_ip_by_ip_address",
                         "get_public_ip_by_private_ip_id", "update_public_ip", "delete_public_ip",
                         "list_public_ips", "list_private_ips", "get_private_ip", "get_vnic",
                         "get_subnet", "list_public_ip_pools", "get_public_ip_pool",
                         "list_vnic_attachments"):
                if hasattr(client, name):
                    self.ops[name] = SdkOperation(client, name)

    # -- calling ------------------------------------------------------------------

    def call(self, label, op, *args, **kwargs):
        """Calls `op`; checks every exchange it made; returns (response or None, error or None)."""
        sdk_op = self.ops[op]
        mark = self.recorder.mark()
        response, error = None, None
        try:
            response = getattr(sdk_op.client, sdk_op.name)(*args, **kwargs)
        except oci.exceptions.ServiceError as e:
            error = e
        except Exception as e:  # the SDK could not send or deserialise: a failure of its own
            self.report.check(f"{label}: the SDK call completes", [f"{type(e).__name__}: {e}"])
            return None, e
        self.check_exchanges(label, sdk_op, self.recorder.since(mark))
        if response is not None:
            self.report.check(f"{label}: deserialises into the SDK's models", unknown_enums(response.data))
        return response, error

    def check_exchanges(self, label, sdk_op, exchanges):
        if not exchanges:
            self.report.check(f"{label}: answered", ["no HTTP exchange was recorded"])
        for ex in exchanges:
            problems = []
            if not ex.headers.get("opc-request-id"):
                problems.append("no opc-request-id")
            body = None
            if ex.text:
                if not ex.headers.get("content-type", "").startswith("application/json"):
                    problems.append(f"content-type {ex.headers.get('content-type')!r}")
                try:
                    body = json.loads(ex.text)
                except ValueError:
                    problems.append("the body is not JSON")
            if 200 <= ex.status < 300:
                if sdk_op.name in ETAG_OPERATIONS and not ex.headers.get("etag"):
                    problems.append("no etag (OCI returns one for this operation)")
                if sdk_op.response_type and body is not None:
                    problems += model_problems(body, sdk_op.response_type, "body")
                if sdk_op.response_type is None and ex.text:
                    problems.append("a body where OCI answers none")
                if not sdk_op.name.startswith("list_") and "opc-next-page" in ex.headers:
                    problems.append("opc-next-page on an answer that is no list")
            else:
                if not isinstance(body, dict) or not isinstance(body.get("code"), str) \
                        or not isinstance(body.get("message"), str):
                    problems.append("the error body is not {code, message}")
                elif body["code"] not in DOCUMENTED_CODES.get(ex.status, set()):
                    problems.append(f"{ex.status} {body['code']} is not an error OCI documents")
            self.report.check(f"{label}: {ex} is OCI-shaped", problems)

    def ok(self, label, op, *args, **kwargs):
        """A call that must succeed."""
        response, error = self.call(label, op, *args, **kwargs)
        if error is not None and not isinstance(error, oci.exceptions.ServiceError):
            return None
        self.report.check(f"{label}: succeeds", [] if error is None else [f"{error.status} {error.code}: {error.message}"])
        return response

    def fails(self, label, status, codes, op, *args, **kwargs):
        """A call that must fail with `status` and one of `codes` (a ServiceError)."""
        response, error = self.call(label, op, *args, **kwargs)
        if isinstance(error, oci.exceptions.ServiceError):
            problems = []
            if error.status != status or error.code not in codes:
                problems.append(f"got {error.status} {error.code}, expected {status} {'/'.join(sorted(codes))}")
            if not error.request_id:
                problems.append("the ServiceError has no opc-request-id")
            self.report.check(f"{label}: {status} {'/'.join(sorted(codes))}", problems)
        elif response is not None:
            self.report.check(f"{label}: {status} {'/'.join(sorted(codes))}", [f"got {response.status}"])
        return error

    def fields(self, label, obj, names):
        """The typed fields we rely on are set."""
        if obj is None:
            return self.report.check(f"{label}: fields {', '.join(names)} set", ["no data"])
        missing = [n for n in names if getattr(obj, n, None) is None]
        return self.report.check(f"{label}: fields {', '.join(names)} set", [f"{n} is None" for n in missing])

    def state_in_enum(self, label, obj, model, attr="lifecycle_state"):
        allowed = allowed_values(model_class(model), attr)
        value = getattr(obj, attr, None) if obj is not None else None
        self.report.check(f"{label}: {attr} {value!r} is a value of {model}'s enum",
                          [] if allowed and value in allowed else [f"allowed: {allowed}"])

    def poll(self, label, public_ip_id, states, timeout=10.0):
        """Polls GetPublicIp until the IP is in one of `states`."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.vn.get_public_ip(public_ip_id).data
            except oci.exceptions.ServiceError as e:
                self.report.check(f"{label}: reaches {'/'.join(states)}", [f"{e.status} {e.code}"])
                return None
            if last.lifecycle_state in states:
                self.report.check(f"{label}: reaches {'/'.join(states)}", [])
                return last
            time.sleep(0.05)
        self.report.check(f"{label}: reaches {'/'.join(states)}",
                          [f"still {last.lifecycle_state if last else None} after {timeout}s"])
        return last

    def wait(self, label, public_ip_id, state):
        """The SDK's own waiter (oci.wait_until) until `state`."""
        try:
            start = self.vn.get_public_ip(public_ip_id)
            done = oci.wait_until(self.vn, start, "lifecycle_state", state, max_wait_seconds=15, max_interval_seconds=1)
            self.report.check(f"{label}: oci.wait_until reaches {state}", [])
            return done.data
        except Exception as e:
            self.report.check(f"{label}: oci.wait_until reaches {state}", [f"{type(e).__name__}: {e}"])
            return None

    # -- reads --------------------------------------------------------------------

    def reads(self):
        r = self.ok("GetSubnet pods", "get_subnet", PODS_SUBNET)
        data = r.data if r else None
        self.fields("GetSubnet pods", data, ["id", "cidr_block", "vcn_id", "prohibit_public_ip_on_vnic", "lifecycle_state"])
        self.state_in_enum("GetSubnet pods", data, "Subnet")
        r = self.ok("GetSubnet private", "get_subnet", PRIVATE_SUBNET)
        self.report.check("GetSubnet private: prohibit_public_ip_on_vnic is true",
                          bool(r and r.data.prohibit_public_ip_on_vnic is True))

        r = self.ok("GetVnic node0-pods", "get_vnic", NODE0_PODS_VNIC)
        data = r.data if r else None
        self.fields("GetVnic node0-pods", data, ["id", "subnet_id", "private_ip", "is_primary", "availability_domain", "compartment_id"])
        self.state_in_enum("GetVnic node0-pods", data, "Vnic")
        r = self.ok("GetVnic node0-primary", "get_vnic", NODE0_PRIMARY_VNIC)
        self.fields("GetVnic node0-primary (ephemeral public IP)", r.data if r else None, ["public_ip"])

        r = self.ok("GetPrivateIp pod 10.0.65.200", "get_private_ip", pod_ip(200))
        data = r.data if r else None
        self.fields("GetPrivateIp pod", data, ["id", "ip_address", "subnet_id", "vnic_id", "is_primary", "compartment_id"])
        self.state_in_enum("GetPrivateIp pod", data, "PrivateIp", "ip_state")
        self.report.check("GetPrivateIp pod: the address is 10.0.65.200", bool(data and data.ip_address == "10.0.65.200"))

        r = self.ok("ListPrivateIps by address in subnet", "list_private_ips", subnet_id=PODS_SUBNET, ip_address="10.0.65.200")
        data = r.data if r else []
        self.report.check("ListPrivateIps by address in subnet: exactly that private IP",
                          [] if [p.id for p in data] == [pod_ip(200)] else [f"got {[p.id for p in data]}"])
        r = self.ok("ListPrivateIps by subnet", "list_private_ips", subnet_id=PRIVATE_SUBNET)
        data = r.data if r else []
        self.report.check("ListPrivateIps by subnet: only that subnet's, and some",
                          bool(data) and all(p.subnet_id == PRIVATE_SUBNET for p in data))
        self.paging("ListPrivateIps by VNIC", "list_private_ips", NODE0_PODS_PRIVATE_IPS, vnic_id=NODE0_PODS_VNIC)

        r = self.ok("ListVnicAttachments of node0", "list_vnic_attachments", COMPARTMENT, instance_id=NODE0)
        data = r.data if r else []
        self.report.check("ListVnicAttachments of node0: its two VNICs, nic indexes 0 and 1",
                          sorted((a.nic_index, a.instance_id) for a in data) == [(0, NODE0), (1, NODE0)])
        for a in data:
            self.fields(f"ListVnicAttachments {a.id}", a, ["id", "instance_id", "vnic_id", "subnet_id", "nic_index", "availability_domain"])
            self.state_in_enum(f"ListVnicAttachments {a.id}", a, "VnicAttachment")
        self.paging("ListVnicAttachments of the compartment", "list_vnic_attachments", None, COMPARTMENT)

        r = self.ok("ListPublicIpPools", "list_public_ip_pools", COMPARTMENT)
        items = r.data.items if r else []
        self.report.check("ListPublicIpPools: pool1 listed", POOL in [p.id for p in items])
        for p in items:
            self.fields(f"ListPublicIpPools {p.id}", p, ["id", "compartment_id", "lifecycle_state"])
        self.paging("ListPublicIpPools", "list_public_ip_pools", None, COMPARTMENT)
        r = self.ok("GetPublicIpPool pool1", "get_public_ip_pool", POOL)
        data = r.data if r else None
        self.fields("GetPublicIpPool pool1", data, ["id", "compartment_id", "cidr_blocks", "lifecycle_state"])
        self.state_in_enum("GetPublicIpPool pool1", data, "PublicIpPool")
        self.report.check("GetPublicIpPool pool1: cidr_blocks", bool(data and data.cidr_blocks == [str(POOL_CIDR)]))

        r = self.ok("GetPublicIpByIpAddress 198.51.100.77", "get_public_ip_by_ip_address",
                    oci.core.models.GetPublicIpByIpAddressDetails(ip_address=SPECIFIC_ADDRESS))
        self.report.check("GetPublicIpByIpAddress: the seeded reserved IP", bool(r and r.data.id == SPECIFIC_ID))
        r = self.ok("GetPublicIp specific", "get_public_ip", SPECIFIC_ID)
        data = r.data if r else None
        self.fields("GetPublicIp specific", data, ["id", "ip_address", "lifetime", "lifecycle_state", "scope", "compartment_id", "time_created"])
        self.state_in_enum("GetPublicIp specific", data, "PublicIp")
        self.report.check("GetPublicIp specific: RESERVED, REGION, AVAILABLE",
                          bool(data and (data.lifetime, data.scope, data.lifecycle_state) == ("RESERVED", "REGION", "AVAILABLE")))
        self.report.check("GetPublicIp: etag of the answer is on Response.headers", bool(r and r.headers.get("etag")))
        r = self.ok("GetPublicIpByPrivateIpId node0 primary (ephemeral)", "get_public_ip_by_private_ip_id",
                    oci.core.models.GetPublicIpByPrivateIpIdDetails(private_ip_id=NODE0_PRIMARY_IP))
        data = r.data if r else None
        self.fields("GetPublicIpByPrivateIpId ephemeral", data, ["id", "ip_address", "assigned_entity_id", "availability_domain"])
        self.report.check("GetPublicIpByPrivateIpId ephemeral: EPHEMERAL, AVAILABILITY_DOMAIN, ASSIGNED, PRIVATE_IP",
                          bool(data and (data.lifetime, data.scope, data.lifecycle_state, data.assigned_entity_type)
                               == ("EPHEMERAL", "AVAILABILITY_DOMAIN", "ASSIGNED", "PRIVATE_IP")))

    def paging(self, label, op, expected_total, *args, **kwargs):
        """Small pages: opc-next-page on every partial page and only there, no
        item twice, the SDK's list_call_get_all_results agrees."""
        client = self.ops[op].client
        fn = getattr(client, op)
        everything = self.ok(f"{label} (one page of up to 1000)", op, *args, limit=1000, **kwargs)
        if everything is None:
            return

        def items(data):
            return data.items if hasattr(data, "items") and not isinstance(data, list) else data

        all_ids = [x.id for x in items(everything.data)]
        self.report.check(f"{label}: no opc-next-page on the last page", "opc-next-page" not in everything.headers)
        if expected_total is not None:
            self.report.check(f"{label}: {expected_total} items", [] if len(all_ids) == expected_total else [f"got {len(all_ids)}"])
        limit = min(50, max(1, len(all_ids) // 3))
        self.report.check(f"{label}: more than one page of {limit} to walk", len(all_ids) > limit)
        seen, page, pages, problems = [], None, 0, []
        while True:
            extra = {"page": page} if page else {}
            r = self.ok(f"{label} page {pages + 1} (limit {limit})", op, *args, limit=limit, **extra, **kwargs)
            if r is None:
                return
            got = [x.id for x in items(r.data)]
            pages += 1
            if len(got) > limit:
                problems.append(f"page {pages} has {len(got)} items")
            seen += got
            page = r.headers.get("opc-next-page")
            if r.has_next_page != bool(page):
                problems.append("Response.has_next_page disagrees with opc-next-page")
            if not page:
                break
            if len(got) < limit and len(seen) < len(all_ids):
                problems.append(f"partial page {pages} before the end")
            if pages > 1000:
                problems.append("more than 1000 pages")
                break
        if seen != all_ids:
            problems.append(f"pages hold {len(seen)} items in another order or with repeats, one page holds {len(all_ids)}")
        self.report.check(f"{label}: {pages} pages of {limit} walked by opc-next-page", problems)
        try:
            everything_sdk = oci.pagination.list_call_get_all_results(fn, *args, limit=limit, **kwargs)
            got = [x.id for x in everything_sdk.data]
            self.report.check(f"{label}: oci.pagination.list_call_get_all_results",
                              [] if got == all_ids else [f"{len(got)} items, expected {len(all_ids)}"])
        except Exception as e:
            self.report.check(f"{label}: oci.pagination.list_call_get_all_results", [f"{type(e).__name__}: {e}"])

    # -- filters: every query parameter of the SDK is applied or refused ---------

    def filters(self):
        covered = {}

        def listed(label, op, keep, *args, **kwargs):
            """A list call with a filter: every item must satisfy `keep`, or the call is refused with 400/404."""
            for kwarg in kwargs:
                covered.setdefault(op, set()).add(kwarg)
            response, error = self.call(label, op, *args, **kwargs)
            if error is not None:
                ok = isinstance(error, oci.exceptions.ServiceError) and error.status in (400, 404)
                self.report.check(f"{label}: applied or refused", [] if ok else [f"{getattr(error, 'status', '')} {error}"])
                return None
            data = response.data.items if hasattr(response.data, "items") and not isinstance(response.data, list) else response.data
            bad = [x.id for x in data if not keep(x)]
            self.report.check(f"{label}: applied ({len(data)} items)", [f"not filtered out: {bad[:3]}"] if bad else [])
            return data

        for op in ("list_public_ips", "list_private_ips", "list_vnic_attachments", "list_public_ip_pools"):
            covered[op] = set(self.ops[op].positional)

        data = listed("ListPublicIps REGION", "list_public_ips", lambda ip: ip.scope == "REGION", "REGION", COMPARTMENT)
        self.report.check("ListPublicIps REGION: the seeded reserved IP listed", SPECIFIC_ID in [ip.id for ip in data or []])
        data = listed("ListPublicIps AVAILABILITY_DOMAIN", "list_public_ips",
                      lambda ip: ip.scope == "AVAILABILITY_DOMAIN" and ip.availability_domain == AD,
                      "AVAILABILITY_DOMAIN", COMPARTMENT, availability_domain=AD)
        self.report.check("ListPublicIps AVAILABILITY_DOMAIN: the nodes' ephemeral IPs listed", len(data or []) >= 3)
        listed("ListPublicIps AVAILABILITY_DOMAIN, another AD", "list_public_ips", lambda ip: False,
               "AVAILABILITY_DOMAIN", COMPARTMENT, availability_domain="EMU:NOWHERE-AD-9")
        # Each lifetime against the scope holding the other kind, so an
        # ignored filter shows.
        listed("ListPublicIps REGION, lifetime EPHEMERAL", "list_public_ips", lambda ip: ip.lifetime == "EPHEMERAL",
               "REGION", COMPARTMENT, lifetime="EPHEMERAL")
        listed("ListPublicIps AVAILABILITY_DOMAIN, lifetime RESERVED", "list_public_ips",
               lambda ip: ip.lifetime == "RESERVED", "AVAILABILITY_DOMAIN", COMPARTMENT, availability_domain=AD,
               lifetime="RESERVED")
        data = listed("ListPublicIps REGION, lifetime RESERVED", "list_public_ips", lambda ip: ip.lifetime == "RESERVED",
                      "REGION", COMPARTMENT, lifetime="RESERVED")
        self.report.check("ListPublicIps REGION, lifetime RESERVED: the seeded reserved IP listed",
                          SPECIFIC_ID in [ip.id for ip in data or []])
        listed("ListPublicIps pool", "list_public_ips", lambda ip: ip.public_ip_pool_id == POOL,
               "REGION", COMPARTMENT, public_ip_pool_id=POOL)
        listed("ListPublicIps another pool", "list_public_ips", lambda ip: False,
               "REGION", COMPARTMENT, public_ip_pool_id=MISSING["pool"])
        self.fails("ListPublicIps unknown compartment", 404, {"NotAuthorizedOrNotFound"},
                   "list_public_ips", "REGION", "ocid1.compartment.oc1..doesnotexist")

        listed("ListPrivateIps by VNIC", "list_private_ips", lambda p: p.vnic_id == NODE0_PRIMARY_VNIC, vnic_id=NODE0_PRIMARY_VNIC)
        listed("ListPrivateIps by address in subnet", "list_private_ips",
               lambda p: p.ip_address == "10.0.65.7" and p.subnet_id == PODS_SUBNET, subnet_id=PODS_SUBNET, ip_address="10.0.65.7")
        listed("ListPrivateIps by address in another subnet", "list_private_ips", lambda p: False,
               subnet_id=PRIVATE_SUBNET, ip_address="10.0.65.7")
        for state in ("ASSIGNED", "AVAILABLE"):
            listed(f"ListPrivateIps ip_state {state}", "list_private_ips", lambda p, s=state: p.ip_state == s,
                   vnic_id=NODE0_PRIMARY_VNIC, ip_state=state)
        for lifetime in ("EPHEMERAL", "RESERVED"):
            listed(f"ListPrivateIps lifetime {lifetime}", "list_private_ips", lambda p, l=lifetime: p.lifetime == l,
                   vnic_id=NODE0_PRIMARY_VNIC, lifetime=lifetime)
        listed("ListPrivateIps by VLAN", "list_private_ips", lambda p: p.vlan_id == "ocid1.vlan.oc1..none",
               vlan_id="ocid1.vlan.oc1..none")

        listed("ListVnicAttachments by instance", "list_vnic_attachments", lambda a: a.instance_id == NODE0, COMPARTMENT, instance_id=NODE0)
        listed("ListVnicAttachments by VNIC", "list_vnic_attachments", lambda a: a.vnic_id == NODE0_PODS_VNIC, COMPARTMENT, vnic_id=NODE0_PODS_VNIC)
        data = listed("ListVnicAttachments in the AD", "list_vnic_attachments", lambda a: a.availability_domain == AD,
                      COMPARTMENT, availability_domain=AD)
        self.report.check("ListVnicAttachments in the AD: some", bool(data))
        listed("ListVnicAttachments in another AD", "list_vnic_attachments", lambda a: False,
               COMPARTMENT, availability_domain="EMU:NOWHERE-AD-9")

        listed("ListPublicIpPools by name", "list_public_ip_pools", lambda p: p.display_name == "pool1", COMPARTMENT, display_name="pool1")
        listed("ListPublicIpPools by another name", "list_public_ip_pools", lambda p: False, COMPARTMENT, display_name="no-such-pool")
        listed("ListPublicIpPools by BYOIP range", "list_public_ip_pools", lambda p: False,
               COMPARTMENT, byoip_range_id="ocid1.byoiprange.oc1..none")
        for sort_by, key in (("DISPLAYNAME", lambda p: p.display_name), ("TIMECREATED", lambda p: p.time_created)):
            for order in ("ASC", "DESC"):
                data = listed(f"ListPublicIpPools sorted by {sort_by} {order}", "list_public_ip_pools", lambda p: True,
                              COMPARTMENT, sort_by=sort_by, sort_order=order)
                keys = [key(p) for p in data or []]
                self.report.check(f"ListPublicIpPools sorted by {sort_by} {order}: in order, two pools or more",
                                  len(keys) >= 2 and keys == sorted(keys, reverse=(order == "DESC")))

        # A new filter in the SDK must get a check here before it passes.
        for op, done in covered.items():
            params = self.ops[op].kwargs - GENERIC_KWARGS - {"limit", "page", "opc_request_id"}
            missing = sorted(params - done)
            self.report.check(f"{op}: every filter of the SDK exercised", [f"not exercised: {missing}"] if missing else [])

    # -- writes -------------------------------------------------------------------

    def writes(self):
        m = oci.core.models
        token = uuid.uuid4().hex
        details = m.CreatePublicIpDetails(compartment_id=COMPARTMENT, lifetime="RESERVED",
                                          display_name="conformance", freeform_tags={"test": "conformance"})
        r = self.ok("CreatePublicIp RESERVED", "create_public_ip", details, opc_retry_token=token)
        if r is None:
            return
        ip = r.data
        self.fields("CreatePublicIp RESERVED", ip, ["id", "ip_address", "lifetime", "lifecycle_state", "compartment_id", "scope"])
        self.state_in_enum("CreatePublicIp RESERVED", ip, "PublicIp")
        self.report.check("CreatePublicIp RESERVED: PROVISIONING or AVAILABLE, no target",
                          ip.lifecycle_state in ("PROVISIONING", "AVAILABLE") and ip.assigned_entity_id is None)
        r = self.ok("CreatePublicIp replayed with its retry token", "create_public_ip", details, opc_retry_token=token)
        self.report.check("CreatePublicIp replay: the same public IP", bool(r and r.data.id == ip.id))
        other = m.CreatePublicIpDetails(compartment_id=COMPARTMENT, lifetime="RESERVED", display_name="another body")
        self.fails("CreatePublicIp retry token reused with another body", 409, DOCUMENTED_CODES[409],
                   "create_public_ip", other, opc_retry_token=token)
        ip = self.wait("CreatePublicIp RESERVED", ip.id, "AVAILABLE") or ip

        # Assign, then move, then unassign; each guarded by the current etag.
        current = self.ok("GetPublicIp before assign", "get_public_ip", ip.id)
        etag = current.headers.get("etag") if current else None
        r = self.ok("UpdatePublicIp assign (if-match current etag)", "update_public_ip", ip.id,
                    m.UpdatePublicIpDetails(private_ip_id=pod_ip(202)), if_match=etag)
        if r:
            self.report.check("UpdatePublicIp assign: ASSIGNING/ASSIGNED to the target",
                              r.data.lifecycle_state in ("ASSIGNING", "ASSIGNED") and r.data.assigned_entity_id == pod_ip(202))
            self.report.check("UpdatePublicIp assign: a new etag", r.headers.get("etag") not in (None, etag))
        got = self.poll("UpdatePublicIp assign", ip.id, ("ASSIGNED",))
        self.fields("assigned public IP", got, ["assigned_entity_id", "assigned_entity_type", "private_ip_id"])
        r = self.ok("GetPublicIpByPrivateIpId assigned target", "get_public_ip_by_private_ip_id",
                    m.GetPublicIpByPrivateIpIdDetails(private_ip_id=pod_ip(202)))
        self.report.check("GetPublicIpByPrivateIpId: the assigned public IP", bool(r and r.data.id == ip.id))
        self.fails("UpdatePublicIp with a stale etag", 412, {"NoEtagMatch"}, "update_public_ip", ip.id,
                   m.UpdatePublicIpDetails(display_name="stale"), if_match=etag)

        r = self.ok("UpdatePublicIp move to another private IP", "update_public_ip", ip.id,
                    m.UpdatePublicIpDetails(private_ip_id=pod_ip(203)))
        got = self.poll("UpdatePublicIp move", ip.id, ("ASSIGNED",))
        self.report.check("UpdatePublicIp move: on the new target", bool(got and got.assigned_entity_id == pod_ip(203)))
        self.fails("GetPublicIpByPrivateIpId of the former target", 404, {"NotAuthorizedOrNotFound"},
                   "get_public_ip_by_private_ip_id", m.GetPublicIpByPrivateIpIdDetails(private_ip_id=pod_ip(202)))

        r = self.ok("UpdatePublicIp unassign (privateIpId \"\")", "update_public_ip", ip.id, m.UpdatePublicIpDetails(private_ip_id=""))
        got = self.poll("UpdatePublicIp unassign", ip.id, ("AVAILABLE", "UNASSIGNED"))
        self.report.check("UpdatePublicIp unassign: no target", bool(got and got.assigned_entity_id is None and got.private_ip_id is None))

        current = self.ok("GetPublicIp before retag", "get_public_ip", ip.id)
        etag = current.headers.get("etag") if current else None
        r = self.ok("UpdatePublicIp rename and retag (if-match current etag)", "update_public_ip", ip.id,
                    m.UpdatePublicIpDetails(display_name="renamed", freeform_tags={"test": "retagged"},
                                            defined_tags={"ns": {"key": "value"}}), if_match=etag)
        if r:
            self.report.check("UpdatePublicIp retag: fields changed",
                              (r.data.display_name, r.data.freeform_tags, r.data.defined_tags)
                              == ("renamed", {"test": "retagged"}, {"ns": {"key": "value"}}))
            self.report.check("UpdatePublicIp retag: a new etag", r.headers.get("etag") not in (None, etag))
        self.fails("DeletePublicIp with a stale etag", 412, {"NoEtagMatch"}, "delete_public_ip", ip.id, if_match=etag)

        # With a target from the start, and from a pool.
        r = self.ok("CreatePublicIp RESERVED with a target", "create_public_ip",
                    m.CreatePublicIpDetails(compartment_id=COMPARTMENT, lifetime="RESERVED", private_ip_id=pod_ip(201)))
        targeted = r.data if r else None
        if targeted:
            self.report.check("CreatePublicIp with a target: the target in assignedEntityId",
                              targeted.assigned_entity_id == pod_ip(201) and targeted.lifecycle_state in ("PROVISIONING", "ASSIGNING", "ASSIGNED"))
            # The operation in progress (the emulator's timing leaves time for
            # this call): OCI refuses a delete with 409 IncorrectState.
            self.fails("DeletePublicIp while ASSIGNING", 409, {"IncorrectState"}, "delete_public_ip", targeted.id)
            self.poll("CreatePublicIp with a target", targeted.id, ("ASSIGNED",))
            self.fails("CreatePublicIp on a private IP that has a public IP", 409, DOCUMENTED_CODES[409], "create_public_ip",
                       m.CreatePublicIpDetails(compartment_id=COMPARTMENT, lifetime="RESERVED", private_ip_id=pod_ip(201)))
        r = self.ok("CreatePublicIp from a pool", "create_public_ip",
                    m.CreatePublicIpDetails(compartment_id=COMPARTMENT, lifetime="RESERVED", public_ip_pool_id=POOL))
        pooled = r.data if r else None
        if pooled:
            self.report.check("CreatePublicIp from a pool: its address and pool id",
                              pooled.public_ip_pool_id == POOL and ipaddress.ip_address(pooled.ip_address) in POOL_CIDR)
            self.poll("CreatePublicIp from a pool", pooled.id, ("AVAILABLE",))
            r = self.ok("ListPublicIps of the pool", "list_public_ips", "REGION", COMPARTMENT, public_ip_pool_id=POOL)
            self.report.check("ListPublicIps of the pool: the new IP", bool(r and pooled.id in [x.id for x in r.data]))

        # Delete: 204 without a body, then gone; a second delete is 404.
        for n, victim in enumerate(x for x in (ip, targeted, pooled) if x):
            name = victim.ip_address
            r = self.ok(f"DeletePublicIp {name}", "delete_public_ip", victim.id)
            if r:
                self.report.check(f"DeletePublicIp {name}: 204", r.status == 204)
            self.poll(f"DeletePublicIp {name}", victim.id, ("TERMINATING", "TERMINATED"))
            if n == 0:  # the SDK's waiter once (it sleeps a second per round)
                try:
                    done = oci.wait_until(self.vn, self.vn.get_public_ip(victim.id), "lifecycle_state", "TERMINATED",
                                          max_wait_seconds=15, max_interval_seconds=1, succeed_on_not_found=True)
                    self.report.check(f"DeletePublicIp {name}: oci.wait_until TERMINATED or gone", done is not None)
                except oci.exceptions.ServiceError as e:
                    self.report.check(f"DeletePublicIp {name}: oci.wait_until TERMINATED or gone",
                                      [] if e.status == 404 else [f"{e.status} {e.code}"])
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                try:
                    self.vn.get_public_ip(victim.id)
                    time.sleep(0.05)
                except oci.exceptions.ServiceError:
                    break
            self.fails(f"GetPublicIp {name} once deleted", 404, {"NotAuthorizedOrNotFound"}, "get_public_ip", victim.id)
            self.fails(f"DeletePublicIp {name} again", 404, {"NotAuthorizedOrNotFound"}, "delete_public_ip", victim.id)

    # -- errors -------------------------------------------------------------------

    def errors(self):
        m = oci.core.models
        nf = {"NotAuthorizedOrNotFound"}
        self.fails("GetPublicIp unknown", 404, nf, "get_public_ip", MISSING["public_ip"])
        self.fails("GetPrivateIp unknown", 404, nf, "get_private_ip", MISSING["private_ip"])
        self.fails("GetVnic unknown", 404, nf, "get_vnic", MISSING["vnic"])
        self.fails("GetSubnet unknown", 404, nf, "get_subnet", MISSING["subnet"])
        self.fails("GetPublicIpPool unknown", 404, nf, "get_public_ip_pool", MISSING["pool"])
        self.fails("UpdatePublicIp unknown", 404, nf, "update_public_ip", MISSING["public_ip"], m.UpdatePublicIpDetails(display_name="x"))
        self.fails("DeletePublicIp unknown", 404, nf, "delete_public_ip", MISSING["public_ip"])
        self.fails("GetPublicIpByIpAddress unknown", 404, nf, "get_public_ip_by_ip_address",
                   m.GetPublicIpByIpAddressDetails(ip_address="192.0.2.254"))
        self.fails("GetPublicIpByPrivateIpId of a private IP without one", 404, nf, "get_public_ip_by_private_ip_id",
                   m.GetPublicIpByPrivateIpIdDetails(private_ip_id=pod_ip(250)))
        self.fails("CreatePublicIp without lifetime", 400, {"MissingParameter", "InvalidParameter"}, "create_public_ip",
                   m.CreatePublicIpDetails(compartment_id=COMPARTMENT))
        self.fails("CreatePublicIp with a lifetime OCI does not have", 400, {"InvalidParameter"}, "create_public_ip",
                   {"compartmentId": COMPARTMENT, "lifetime": "FOREVER"})
        self.fails("CreatePublicIp on an unknown private IP", 400, {"RelatedResourceNotAuthorizedOrNotFound", "InvalidParameter"},
                   "create_public_ip", m.CreatePublicIpDetails(compartment_id=COMPARTMENT, lifetime="RESERVED", private_ip_id=MISSING["private_ip"]))
        self.fails("CreatePublicIp on a private IP of a private subnet", 400, {"InvalidParameter"}, "create_public_ip",
                   m.CreatePublicIpDetails(compartment_id=COMPARTMENT, lifetime="RESERVED", private_ip_id=PRIVATE0_IP))
        self.fails("CreatePublicIp from an unknown pool", 400, {"RelatedResourceNotAuthorizedOrNotFound", "InvalidParameter"},
                   "create_public_ip", m.CreatePublicIpDetails(compartment_id=COMPARTMENT, lifetime="RESERVED", public_ip_pool_id=MISSING["pool"]))
        self.fails("CreatePublicIp in an unknown compartment", 404, nf, "create_public_ip",
                   m.CreatePublicIpDetails(compartment_id="ocid1.compartment.oc1..doesnotexist", lifetime="RESERVED"))
        self.fails("ListPrivateIps without subnet, VNIC or VLAN", 400, {"MissingParameter", "InvalidParameter"}, "list_private_ips")
        self.fails("ListPrivateIps by address without a subnet", 400, {"MissingParameter", "InvalidParameter"}, "list_private_ips",
                   ip_address="10.0.65.7")
        self.fails("ListPublicIps AVAILABILITY_DOMAIN without the AD", 400, {"MissingParameter", "InvalidParameter"},
                   "list_public_ips", "AVAILABILITY_DOMAIN", COMPARTMENT)

        # Signatures OCI would not accept.
        wrong = dict(self.config, fingerprint="00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00")
        stranger = oci.core.VirtualNetworkClient(wrong, **self.options)
        self.recorder.attach(stranger)
        self.ops["get_vnic (unknown key)"] = SdkOperation(stranger, "get_vnic")
        self.fails("GetVnic signed with an unknown key", 401, {"NotAuthenticated"}, "get_vnic (unknown key)", NODE0_PODS_VNIC)

        tampering = oci.core.VirtualNetworkClient(self.config, **self.options)
        self.recorder.attach(tampering)
        inner = tampering.base_client.signer

        def sign_then_change_body(request, *args, **kwargs):
            signed = inner(request, *args, **kwargs)
            signed.body = json.dumps({"ipAddress": "198.51.100.78"})
            signed.headers["content-length"] = str(len(signed.body))
            return signed

        tampering.base_client.signer = sign_then_change_body
        self.ops["get_public_ip_by_ip_address (body changed)"] = SdkOperation(tampering, "get_public_ip_by_ip_address")
        self.fails("GetPublicIpByIpAddress with the body changed after signing", 401, {"NotAuthenticated"},
                   "get_public_ip_by_ip_address (body changed)", m.GetPublicIpByIpAddressDetails(ip_address=SPECIFIC_ADDRESS))

    # -- the operator's own requests and models -----------------------------------

    def operator(self, path):
        with open(path) as f:
            doc = json.load(f)
        report = self.report
        all_ops = []
        for client, name in sdk_operations([self.vn, self.compute]):
            try:
                all_ops.append(SdkOperation(client, name))
            except Exception:
                continue  # not an API call (e.g. a helper): never matched
        base_path = urllib.parse.urlsplit(self.vn.base_client.endpoint).path
        signed_by_sdk = self.sdk_signed_headers()
        requests = doc.get("requests", [])
        report.check("operator: requests recorded", [] if requests else ["none"])
        seen_ops = set()
        for i, req in enumerate(requests):
            label = f"operator {req['call']} #{i}: {req['method']} {req['path']}"
            problems = []
            if not req["path"].startswith(base_path + "/"):
                report.check(label, [f"path outside the API version {base_path}"])
                continue
            rel = req["path"][len(base_path):]
            matches = [(op, op.path_regex().match(rel)) for op in all_ops if op.http_method == req["method"]]
            matches = sorted([(op, mt) for op, mt in matches if mt], key=lambda x: -x[0].literal_segments())
            if not matches:
                report.check(label, ["no operation of the official SDK has this method and path"])
                continue
            op, match = matches[0]
            seen_ops.add(op.name)
            kwargs = {}
            for var, value in match.groupdict().items():
                kwargs[camel_to_snake(var)] = urllib.parse.unquote(value)
            for name, value in req["query"]:
                spec = op.query.get(name)
                if spec is None:
                    problems.append(f"query parameter {name} is not one of {op.name}'s ({sorted(op.query)})")
                    continue
                kwarg = spec[1] if spec[0] == "kwarg" else camel_to_snake(spec[1])
                kwargs[kwarg] = int(value) if name == "limit" else value
            for name, value in req["headers"].items():
                if name in TRANSPORT_HEADERS:
                    continue
                spec = op.headers.get(name)
                if spec is None:
                    problems.append(f"header {name} is not one the SDK sends for {op.name}")
                elif spec[0] == "constant" and name == "accept":
                    # A narrower accept than the SDK's (which may add streaming types) is fine.
                    media = lambda text: {m.strip() for m in text.split(",")}
                    if not media(value) <= media(spec[1]):
                        problems.append(f"header accept: {value!r}, the SDK accepts {spec[1]!r}")
                elif spec[0] == "constant":
                    if value != spec[1]:
                        problems.append(f"header {name}: {value!r}, the SDK sends {spec[1]!r}")
                else:
                    kwargs[spec[1]] = value
            body_json = req.get("body")
            if op.body_model:
                if body_json is None:
                    problems.append(f"no body; {op.name} takes a {op.body_model}")
                else:
                    problems += model_problems(body_json, op.body_model, "body")
                    try:
                        kwargs[op.body_param] = self.vn.base_client.deserialize_response_data(
                            json.dumps(body_json).encode(), op.body_model)
                    except Exception as e:
                        problems.append(f"the SDK refuses the body as {op.body_model}: {e}")
            elif body_json is not None:
                problems.append(f"a body, but {op.name} takes none")
            sent = self.dry_run(op, kwargs, problems)
            if sent is not None:
                sdk_query = {k: str(v) for k, v in (sent.get("query_params") or {}).items()}
                ours = {k: v for k, v in req["query"]}
                if len(ours) != len(req["query"]):
                    problems.append("a query parameter twice")
                if sdk_query != ours:
                    problems.append(f"query {ours}, the SDK sends {sdk_query}")
                if op.body_model and body_json is not None and op.body_param in kwargs:
                    sdk_body = self.vn.base_client.sanitize_for_serialization(sent.get("body"))
                    if sdk_body != body_json:
                        problems.append(f"body {body_json}, the SDK sends {sdk_body} for the same details")
                for name, value in (sent.get("header_params") or {}).items():
                    if name in ("accept", "content-type", "opc-retry-token", "if-match") and value is not None \
                            and req["headers"].get(name) is None and not (name == "content-type" and body_json is None):
                        problems.append(f"the SDK sends header {name}, the operator does not")
            problems += self.signature_problems(req, signed_by_sdk)
            report.check(f"{label} is a request of the official {op.name}", problems)
        expected = set(doc.get("operations", []))
        report.check("operator: every OciNetwork call was recorded",
                     [f"missing: {sorted(expected - seen_ops)}"] if expected - seen_ops else [])

        for model_name, values in doc.get("models", {}).items():
            cls = model_class(model_name)
            known = set(cls().attribute_map.values())
            for value in values:
                unknown = sorted(k for k in value if k not in known)
                report.check(f"operator model {model_name}: every field it reads is in the official {model_name}",
                             [f"not in the SDK's model: {unknown}"] if unknown else [])
        for field, ours in doc.get("enums", {}).items():
            model_name, wire = field.split(".")
            cls = model_class(model_name)
            attr = {v: k for k, v in cls().attribute_map.items()}.get(wire)
            allowed = allowed_values(cls, attr) if attr else None
            if allowed is None:
                report.check(f"operator enum {field}", [f"{model_name} has no enum field {wire}"])
                continue
            report.check(f"operator enum {field}: every value the operator knows is OCI's",
                         [f"not OCI's: {sorted(set(ours) - set(allowed))}"] if set(ours) - set(allowed) else [])
            report.check(f"operator enum {field}: every value OCI has is known to the operator",
                         [f"unknown to the operator: {sorted(set(allowed) - set(ours))}"] if set(allowed) - set(ours) else [])
        for field, values in doc.get("values", {}).items():
            model_name, wire = field.split(".")
            cls = model_class(model_name)
            attr = {v: k for k, v in cls().attribute_map.items()}.get(wire)
            allowed = allowed_values(cls, attr) if attr else None
            report.check(f"operator compares {field} with {values}: values of the official enum",
                         [] if allowed and set(values) <= set(allowed) else [f"allowed: {allowed}"])

    def dry_run(self, op, kwargs, problems):
        """What the SDK would send for `kwargs`, captured instead of sent."""
        kind = type(op.client)
        if kind not in self.dry_clients:
            dry = kind(self.config, **self.options)
            dry.base_client.call_api = lambda **call: self.captured.append(call)
            self.dry_clients[kind] = dry
        self.captured = []
        try:
            getattr(self.dry_clients[kind], op.name)(**kwargs)
        except (ValueError, TypeError) as e:
            problems.append(f"the SDK refuses these arguments: {e}")
            return None
        return self.captured[0] if self.captured else {}

    def sdk_signed_headers(self):
        """The signed-header list of the SDK's own requests, per HTTP method."""
        signed = {}
        for ex in self.recorder.exchanges:
            found = re.search(r'headers="([^"]+)"', ex.request_headers.get("authorization", ""))
            if found and ex.status != 401:
                signed.setdefault(ex.method, found.group(1).split())
        return signed

    @staticmethod
    def signature_problems(req, signed_by_sdk):
        auth = req["headers"].get("authorization", "")
        problems = []
        params = dict(re.findall(r'(\w+)="([^"]*)"', auth))
        if not auth.startswith("Signature "):
            return ["no OCI signature (Authorization: Signature ...)"]
        if params.get("algorithm") != "rsa-sha256" or params.get("version") != "1":
            problems.append(f"algorithm {params.get('algorithm')} version {params.get('version')}, OCI's are rsa-sha256 and 1")
        ours = params.get("headers", "").split()
        sdk = signed_by_sdk.get(req["method"])
        if sdk is None:
            problems.append(f"no request of the SDK with method {req['method']} to compare the signed headers with")
        elif sorted(ours) != sorted(sdk):
            problems.append(f"signs {ours}, the SDK signs {sdk}")
        for name in ours:
            if name != "(request-target)" and name not in req["headers"]:
                problems.append(f"signs {name} but does not send it")
        return problems


def load_config(path, profile):
    """The SDK resolves a relative key_file against the working directory; the
    sandbox's config means its own directory (testdata/README.md)."""
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    cwd = os.getcwd()
    os.chdir(directory)
    try:
        config = oci.config.from_file(path, profile)
    finally:
        os.chdir(cwd)
    if not os.path.isabs(config["key_file"]):
        config["key_file"] = os.path.join(directory, config["key_file"])
    return config


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True, help="the emulator's base URL, http://127.0.0.1:PORT")
    parser.add_argument("--config", required=True, help="OCI config file of the sandbox tenancy")
    parser.add_argument("--profile", default="DEFAULT")
    parser.add_argument("--operator-requests", help="JSON of the operator's recorded requests and models")
    args = parser.parse_args()
    host = urllib.parse.urlsplit(args.endpoint).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"refusing to talk to {host}: the conformance run is for the local emulator only")

    started = time.monotonic()
    print(f"official OCI Python SDK {oci.__version__} against {args.endpoint}", flush=True)
    report = Report()
    run = Conformance(args.endpoint, load_config(args.config, args.profile), report)
    phases = [run.reads, run.filters, run.writes, run.errors]
    if args.operator_requests:
        phases.append(lambda: run.operator(args.operator_requests))
    for phase in phases:
        name = getattr(phase, "__name__", "operator")
        name = "operator" if name == "<lambda>" else name
        phase_started = time.monotonic()
        try:
            phase()
        except Exception as e:  # a bug here must not hide the other phases' results
            report.check(f"{name} ran to the end", [f"{type(e).__name__}: {e}"])
        print(f"---- {name}: {time.monotonic() - phase_started:.1f}s", flush=True)

    print(f"\n{report.passed + len(report.failures)} checks, {len(report.failures)} failed, "
          f"{time.monotonic() - started:.1f}s (oci {oci.__version__})")
    if report.failures:
        print("\nfailures:")
        for failure in report.failures:
            print(f"  {failure}")
        sys.exit(1)


if __name__ == "__main__":
    main()
