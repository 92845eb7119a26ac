"""Who may use the console: bind address, token, and the HTTP Host and Origin checks.

A console on a loopback address needs no token; anything else needs one of at least
MIN_TOKEN_CHARS characters. The Host and Origin checks stop DNS rebinding and cross-site
WebSocket use from a browser's other tabs.
"""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import urlsplit

MIN_TOKEN_CHARS = 16


def is_loopback(host: str) -> bool:
    """Return whether `host` (a name or an address, IPv6 with or without brackets) is local."""
    host = host.strip().strip('[]').lower()
    if host == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind_settings(host: str, token: str) -> None:
    """Refuse settings that would expose the console without a token; raise ValueError."""
    if not host.strip():
        raise ValueError('host is empty: give an address to listen on, e.g. 127.0.0.1')
    if token and len(token) < MIN_TOKEN_CHARS:
        raise ValueError(
            f'token is {len(token)} characters; use at least {MIN_TOKEN_CHARS} '
            '(e.g. the output of `openssl rand -hex 16`)'
        )
    if not is_loopback(host) and not token:
        raise ValueError(
            f"host '{host}' is not a loopback address: anyone who can reach it could prompt "
            'the tracker, so serving on it needs the token parameter (a secret of at least '
            f'{MIN_TOKEN_CHARS} characters that the page presents); or keep the default '
            '127.0.0.1 and reach it through an SSH tunnel'
        )


def token_matches(expected: str, presented: str | None) -> bool:
    """Return whether the presented token is the expected one (always, when none is set)."""
    if not expected:
        return True
    return presented is not None and hmac.compare_digest(expected.encode(), presented.encode())


def host_header_allowed(host_header: str | None, loopback_only: bool) -> bool:
    """Check the HTTP Host header: a console bound to loopback answers only loopback names.

    That stops DNS rebinding (a web page whose own name resolves to 127.0.0.1).
    """
    if not loopback_only:
        return True
    if not host_header:
        return False
    return is_loopback(urlsplit(f'//{host_header}').hostname or '')


def origin_allowed(origin: str | None, host_header: str | None) -> bool:
    """Check a WebSocket's Origin: browsers must come from the console's own page.

    Browsers send Origin with every WebSocket handshake and let any site open one, so a
    foreign origin is refused; clients that send none (scripts, tests) are allowed.
    """
    if origin is None:
        return True
    return bool(host_header) and urlsplit(origin).netloc.lower() == host_header.lower()
