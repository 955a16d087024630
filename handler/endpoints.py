"""Where the services are: each service's endpoint in a region, region IDs, scopes, and the one rule for where
credentials may travel (https, or http to a loopback host)."""

import re
from typing import NamedTuple
from urllib.parse import urlsplit

__all__ = [
    "ACCESSIBLE",
    "MAX_SCOPES",
    "REGION_PATTERN",
    "Scope",
    "endpoint_is_allowed",
    "loopback_host",
    "scope_region",
    "service_endpoint",
]

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4_LOOPBACK = re.compile(rf"127(?:\.{_OCTET}){{3}}")


def endpoint_is_allowed(url: str) -> bool:
    """Credentials travel only over https, except to a loopback host (the local emulator)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and loopback_host(parts.hostname or "")


def loopback_host(hostname: str) -> bool:
    """localhost, 127.x.y.z or another loopback address form (::1)."""
    if hostname == "localhost" or _IPV4_LOOPBACK.fullmatch(hostname):
        return True
    import ipaddress  # other address forms only; https endpoints never come here

    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


# The endpoints that are not https://{service}.{region}.myhuaweicloud.com, from the SDK's region tables
# (huaweicloudsdkcce, huaweicloudsdkiam, huaweicloudsdksmn, huaweicloudsdkfunctiongraph 3.1.219,
# v*/region/*_region.py, e.g. https://github.com/huaweicloud/huaweicloud-sdk-python-v3/blob/master/huaweicloud-sdk-smn/huaweicloudsdksmn/v2/region/smn_region.py).
_DOMAINS = {
    ("cce", "eu-west-101"): "myhuaweicloud.eu",
    ("iam", "eu-west-101"): "myhuaweicloud.eu",
    ("smn", "eu-west-101"): "myhuaweicloud.eu",
    ("smn", "cn-north-2"): "myhuaweicloud.cn",
}


def service_endpoint(service: str, region: str) -> str:
    """A service's endpoint in a region, as the SDK's region tables give it."""
    return f"https://{service}.{region}.{_DOMAINS.get((service, region), 'myhuaweicloud.com')}"


MAX_SCOPES = 500  # one asynchronous invocation each per pass
REGION_PATTERN = r"[a-z]{2}(?:-[a-z0-9]+){1,3}"  # a region ID: HUAWEICLOUD_SDK_REGION and each of SYNC_SCOPES


ACCESSIBLE = "accessible"  # SYNC_SCOPES: every project the function's identity can reach, listed at run time


def scope_region(project_name: str) -> str:
    """The region of a project named after it (`ap-southeast-1`) or a region's subproject (`ap-southeast-1_dev`);
    "" for any other project (an account's `MOS`, say). IAM names projects so (KeystoneListAuthProjects)."""
    region = project_name.split("_", 1)[0]
    return region if re.fullmatch(REGION_PATTERN, region) else ""


class Scope(NamedTuple):
    """A region and a project a pass covers."""

    region: str
    project_id: str
