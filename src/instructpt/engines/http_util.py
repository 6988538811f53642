"""Helpers for talking to OpenAI-compatible HTTP servers: URLs safe to show, ``Retry-After``, the human part of
an error response, and the KV-cache size a vLLM server reports in its Prometheus ``/metrics``."""

from __future__ import annotations

import email.utils
import re
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

MESSAGE_CHARS = 200  # how much of a server's error message is kept


def public_url(url: str) -> str:
    """``url`` without user info, query or fragment, so credentials embedded in it are never shown."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def server_message(response: httpx.Response) -> str:
    """The human part of an error response (OpenAI, vLLM and TGI shapes), trimmed."""
    try:
        data = response.json()
    except ValueError:
        data = None
    msg: Any = None
    if isinstance(data, dict):
        err = data.get("error")
        msg = err.get("message") if isinstance(err, dict) else err
        msg = msg or data.get("message") or data.get("detail")
    text = str(msg) if msg else response.text
    text = " ".join(text.split())
    return text[:MESSAGE_CHARS] + ("..." if len(text) > MESSAGE_CHARS else "")


_INFO_LINE = re.compile(r"^vllm:cache_config_info\{(?P<labels>[^}]*)\}", re.M)
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def kv_capacity_from_metrics(text: str) -> int | None:
    """KV-cache tokens from vLLM's Prometheus text: ``num_gpu_blocks * block_size``, summed over engines (data
    parallel ranks each have their own cache); None when the metric is absent or unreadable."""
    per_engine: dict[str, int] = {}
    for match in _INFO_LINE.finditer(text):
        labels = dict(_LABEL.findall(match["labels"]))
        try:
            tokens = int(labels["num_gpu_blocks"]) * int(labels["block_size"])
        except (KeyError, ValueError):
            continue
        per_engine[labels.get("engine", "")] = tokens
    total = sum(per_engine.values())
    return total if total > 0 else None
