"""The control plane's paginated List operations: ListModels, ListEndpointConfigs, ListEndpoints.

A mixin of :class:`~._control.ControlPlane`, which holds the ``models``, ``configs`` and
``endpoints`` it reads; sorting, filters and NextToken/MaxResults are in ``_paging``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._paging import page, time_filters

Json = dict[str, Any]


def _by(key: str) -> Callable[[Json], Any]:
    def get(item: Json) -> Any:
        return item[key]

    return get


class ListOperations:
    """``op_List*`` handlers over the control plane's stored resources."""

    models: dict[str, Json]
    configs: dict[str, Json]
    endpoints: dict[str, Json]

    def op_ListModels(self, body: Json) -> Json:
        found = [
            {
                "_name": m["ModelName"],
                "ModelName": m["ModelName"],
                "ModelArn": m["ModelArn"],
                "CreationTime": m["CreationTime"],
            }
            for m in self.models.values()
            if body.get("NameContains", "") in m["ModelName"]
            and time_filters(m["CreationTime"], body, "CreationTime")
        ]
        return page(
            found,
            body,
            result_key="Models",
            sort_keys={"Name": _by("ModelName"), "CreationTime": _by("CreationTime")},
            default_sort="CreationTime",
        )

    def op_ListEndpointConfigs(self, body: Json) -> Json:
        found = [
            {
                "_name": c["EndpointConfigName"],
                "EndpointConfigName": c["EndpointConfigName"],
                "EndpointConfigArn": c["EndpointConfigArn"],
                "CreationTime": c["CreationTime"],
            }
            for c in self.configs.values()
            if body.get("NameContains", "") in c["EndpointConfigName"]
            and time_filters(c["CreationTime"], body, "CreationTime")
        ]
        return page(
            found,
            body,
            result_key="EndpointConfigs",
            sort_keys={"Name": _by("EndpointConfigName"), "CreationTime": _by("CreationTime")},
            default_sort="CreationTime",
        )

    def op_ListEndpoints(self, body: Json) -> Json:
        found = [
            {
                "_name": e["EndpointName"],
                **{
                    key: e[key]
                    for key in (
                        "EndpointName",
                        "EndpointArn",
                        "CreationTime",
                        "LastModifiedTime",
                        "EndpointStatus",
                    )
                },
            }
            for e in self.endpoints.values()
            if body.get("NameContains", "") in e["EndpointName"]
            and body.get("StatusEquals") in (None, e["EndpointStatus"])
            and time_filters(e["CreationTime"], body, "CreationTime")
            and time_filters(e["LastModifiedTime"], body, "LastModifiedTime")
        ]
        return page(
            found,
            body,
            result_key="Endpoints",
            sort_keys={
                "Name": _by("EndpointName"),
                "CreationTime": _by("CreationTime"),
                "Status": _by("EndpointStatus"),
            },
            default_sort="CreationTime",
        )
