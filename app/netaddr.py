"""Network addresses: whether a host stays on this machine, or on this machine's private network."""

from __future__ import annotations

import ipaddress
import socket


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``text`` as an IPv4 or IPv6 address (no brackets), or None when it is not one (a name)."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 with or without brackets) reaches only this
    machine: 127.0.0.0/8, ::1 and "localhost"."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    ip = parse_ip(name)
    return ip is not None and ip.is_loopback


def _private_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # is_private covers loopback, RFC 1918, link-local, IPv6 ULA (and a few reserved blocks);
    # 100.64/10 is carrier-grade NAT (Tailscale and friends), a private network too.
    return ip.is_private or ip.is_loopback or ip in ipaddress.ip_network("100.64.0.0/10")


def is_private_host(host: str, *, resolve: bool = True) -> bool:
    """True for loopback, private and link-local addresses and names that resolve only to them.

    With ``resolve`` False a name other than ``localhost`` counts as public (no DNS lookup).
    """
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    ip = parse_ip(host)
    if ip is not None:
        return _private_ip(ip)
    if not resolve:
        return False
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(_private_ip(ipaddress.ip_address(str(a).split("%")[0]))
                                   for a in addresses)
