"""Policy engine speed: µs per decision, uncached ``evaluate`` vs the per-connection cache.

Run: ``python -m benchmarks.bench_policy`` (a few seconds). The policy is a typical device
policy: 5 statements, thing and client-id variables, one condition, one Deny.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from fleet_sim.policy import (
    ConnectionAuthorizer,
    RequestContext,
    ThingInfo,
    evaluate,
    parse_policy,
    topic_arn,
)

REGION, ACCOUNT = "us-east-1", "123456789012"
A = f"arn:aws:iot:{REGION}:{ACCOUNT}:"
POLICY_TEXT = f"""{{
  "Version": "2012-10-17",
  "Statement": [
    {{"Sid": "connect", "Effect": "Allow", "Action": "iot:Connect",
      "Resource": "{A}client/${{iot:Connection.Thing.ThingName}}",
      "Condition": {{"Bool": {{"iot:Connection.Thing.IsAttached": "true"}}}}}},
    {{"Sid": "telemetry", "Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
      "Resource": ["{A}topic/dt/${{iot:ClientId}}/*", "{A}topic/cmd/${{iot:ClientId}}/*"]}},
    {{"Sid": "shadow", "Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
      "Resource": "{A}topic/$aws/things/${{iot:Connection.Thing.ThingName}}/shadow/*"}},
    {{"Sid": "subscribe", "Effect": "Allow", "Action": "iot:Subscribe",
      "Resource": ["{A}topicfilter/cmd/${{iot:ClientId}}/#",
                   "{A}topicfilter/$aws/things/${{iot:Connection.Thing.ThingName}}/shadow/*"]}},
    {{"Sid": "noDelete", "Effect": "Deny", "Action": "iot:Publish",
      "Resource": "{A}topic/$aws/things/*/shadow/delete"}}
  ]
}}"""

CLIENT = "sensor-000042"
TOPICS = [
    f"dt/{CLIENT}/temperature",
    f"$aws/things/{CLIENT}/shadow/update",
    f"$aws/things/{CLIENT}/shadow/delete",
    "dt/other-device/temperature",
]


def _per_call_us(fn: Callable[[], object], calls: int) -> float:
    fn()  # warm up
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    policy = parse_policy(POLICY_TEXT, name="device")
    context = RequestContext(CLIENT, source_ip="10.0.0.7", thing=ThingInfo(CLIENT))
    resources = [topic_arn(REGION, ACCOUNT, t) for t in TOPICS]
    rows: list[tuple[str, float]] = []

    rows.append(
        ("parse_policy (5 statements)", _per_call_us(lambda: parse_policy(POLICY_TEXT), 2_000))
    )

    counter = iter(range(10**9))

    def cold() -> object:
        i = next(counter)
        return evaluate([policy], "iot:Publish", resources[i % len(resources)], context)

    rows.append(("evaluate, uncached (Publish, mixed topics)", _per_call_us(cold, 50_000)))

    def cold_subscribe() -> object:
        return evaluate([policy], "iot:Subscribe", f"{A}topicfilter/cmd/{CLIENT}/#", context)

    rows.append(("evaluate, uncached (Subscribe)", _per_call_us(cold_subscribe, 50_000)))

    def cold_connect() -> object:
        return evaluate([policy], "iot:Connect", f"{A}client/{CLIENT}", context)

    rows.append(("evaluate, uncached (Connect + condition)", _per_call_us(cold_connect, 50_000)))

    def miss() -> object:
        i = next(counter)
        auth = ConnectionAuthorizer([policy], context, region=REGION, account_id=ACCOUNT)
        return auth.can_publish(TOPICS[i % len(TOPICS)])

    rows.append(("new authorizer + first can_publish (miss)", _per_call_us(miss, 20_000)))

    auth = ConnectionAuthorizer([policy], context, region=REGION, account_id=ACCOUNT)
    rows.append(
        ("authorizer hit: can_publish", _per_call_us(lambda: auth.can_publish(TOPICS[0]), 500_000))
    )
    rows.append(
        (
            "authorizer hit: can_subscribe",
            _per_call_us(lambda: auth.can_subscribe(f"cmd/{CLIENT}/#"), 500_000),
        )
    )
    rows.append(
        (
            "authorizer hit: check(action, arn)",
            _per_call_us(lambda: auth.check("iot:Receive", resources[0]), 500_000),
        )
    )

    width = max(len(name) for name, _ in rows)
    print(f"{'operation':<{width}}  µs/call")
    print(f"{'-' * width}  -------")
    for name, micros in rows:
        print(f"{name:<{width}}  {micros:7.2f}")


if __name__ == "__main__":
    main()
