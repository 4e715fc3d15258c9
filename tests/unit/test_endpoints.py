"""Endpoint resolution: SDK host patterns, env overrides, config overrides."""

from __future__ import annotations

import pytest

from watcher.cloud.endpoints import default_endpoint, env_var_name, host_of, normalize, resolve_endpoint


@pytest.mark.parametrize(
    "service,region,expected",
    [
        ("workspace", "cn-north-4", "https://workspace.cn-north-4.myhuaweicloud.com"),
        ("workspace", "ap-southeast-1", "https://workspace.ap-southeast-1.myhuaweicloud.com"),
        ("workspace", "eu-west-101", "https://workspace.eu-west-101.myhuaweicloud.com"),
        ("workspaceapp", "cn-north-4", "https://appstream.cn-north-4.myhuaweicloud.com"),
        ("workspaceapp", "cn-east-3", "https://appstream.cn-east-3.myhuaweicloud.com"),
        ("workspaceapp", "cn-north-9", "https://appstream.cn-north-9.myhuaweicloud.com"),
        ("workspaceapp", "cn-southwest-2", "https://appstream.cn-southwest-2.myhuaweicloud.com"),
        ("workspaceapp", "cn-south-1", "https://appstream.cn-south-1.myhuaweicloud.com"),
        ("workspaceapp", "cn-east-5", "https://workspace.cn-east-5.myhuaweicloud.com"),
        ("workspaceapp", "ap-southeast-3", "https://workspace.ap-southeast-3.myhuaweicloud.com"),
        ("workspaceapp", "la-south-2", "https://workspace.la-south-2.myhuaweicloud.com"),
        ("evs", "cn-north-4", "https://evs.cn-north-4.myhuaweicloud.com"),
        ("evs", "af-south-1", "https://evs.af-south-1.myhuaweicloud.com"),
    ],
)
def test_default_endpoint(service, region, expected):
    assert default_endpoint(service, region) == expected
    assert resolve_endpoint(service, region, {}, {}) == expected


@pytest.mark.parametrize(
    "service,region,expected",
    [
        ("evs", "cn-north-4", "HUAWEICLOUD_SDK_REGION_EVS_CN_NORTH_4"),
        ("workspaceapp", "ap-southeast-1", "HUAWEICLOUD_SDK_REGION_WORKSPACEAPP_AP_SOUTHEAST_1"),
        ("workspace", "eu-west-101", "HUAWEICLOUD_SDK_REGION_WORKSPACE_EU_WEST_101"),
    ],
)
def test_env_var_name(service, region, expected):
    assert env_var_name(service, region) == expected


@pytest.mark.parametrize(
    "overrides,environ,expected",
    [
        ({}, {"HUAWEICLOUD_SDK_REGION_EVS_CN_NORTH_4": "http://127.0.0.1:9000"}, "http://127.0.0.1:9000"),
        ({}, {"HUAWEICLOUD_SDK_REGION_EVS_CN_NORTH_4": "http://a:1,http://b:2"}, "http://a:1"),
        ({}, {"HUAWEICLOUD_SDK_REGION_EVS_CN_NORTH_4": " evs.local "}, "https://evs.local"),
        ({}, {"HUAWEICLOUD_SDK_REGION_EVS_CN_NORTH_4": ""}, "https://evs.cn-north-4.myhuaweicloud.com"),
        ({}, {"HUAWEICLOUD_SDK_REGION_EVS_CN_EAST_3": "http://other"}, "https://evs.cn-north-4.myhuaweicloud.com"),
        ({}, {"HUAWEICLOUD_SDK_REGION_WORKSPACE_CN_NORTH_4": "http://ws"}, "https://evs.cn-north-4.myhuaweicloud.com"),
        ({"evs": "http://127.0.0.1:8080"}, {}, "http://127.0.0.1:8080"),
        ({"evs": "http://127.0.0.1:8080/"}, {}, "http://127.0.0.1:8080"),
        ({"evs": "http://cfg:1"}, {"HUAWEICLOUD_SDK_REGION_EVS_CN_NORTH_4": "http://env:2"}, "http://cfg:1"),
        ({"workspace": "http://cfg:1"}, {}, "https://evs.cn-north-4.myhuaweicloud.com"),
        ({"evs": ""}, {}, "https://evs.cn-north-4.myhuaweicloud.com"),
    ],
)
def test_resolution_precedence(overrides, environ, expected):
    assert resolve_endpoint("evs", "cn-north-4", overrides, environ) == expected


def test_environ_defaults_to_process_env(monkeypatch):
    monkeypatch.setenv("HUAWEICLOUD_SDK_REGION_WORKSPACE_CN_NORTH_4", "http://127.0.0.1:1234")
    assert resolve_endpoint("workspace", "cn-north-4") == "http://127.0.0.1:1234"


@pytest.mark.parametrize(
    "url,expected",
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("https://host/some/path?q=1", "https://host"),
        ("host.example:8443", "https://host.example:8443"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_normalize(url, expected):
    assert normalize(url) == expected


@pytest.mark.parametrize("url", ["ftp://host", "http://", "https:///path"])
def test_normalize_rejects(url):
    with pytest.raises(ValueError):
        normalize(url)


@pytest.mark.parametrize(
    "service,region",
    [
        ("ecs", "cn-north-4"),
        ("workspace", "cn_north_4"),
        ("workspace", "evil.com/x"),
        ("evs", ""),
        ("evs", "CN-NORTH-4"),
    ],
)
def test_rejects_unknown_service_and_bad_region(service, region):
    with pytest.raises(ValueError):
        resolve_endpoint(service, region, {}, {})


@pytest.mark.parametrize(
    "base,host",
    [
        ("https://evs.cn-north-4.myhuaweicloud.com", "evs.cn-north-4.myhuaweicloud.com"),
        ("http://127.0.0.1:35969", "127.0.0.1:35969"),
        ("http://127.0.0.1:80", "127.0.0.1:80"),
    ],
)
def test_host_keeps_the_port(base, host):
    assert host_of(base) == host
