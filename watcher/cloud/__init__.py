"""Talking to Huawei Cloud: endpoints, credentials, AK/SK signing, the retrying HTTP client.

First stage of the flow (sources → poller → …): ``sources/`` call :class:`client.CloudClient`
and decode the bytes it returns. Only this package and ``sources/`` speak HTTP to the cloud.
Imports: the standard library, httpx, msgspec and :mod:`watcher.errors`; never the rest of
watcher. ``signer`` is also used by the simulator to check signatures, so it stays pure.
"""
