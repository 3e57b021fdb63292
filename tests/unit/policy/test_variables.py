"""RequestContext key/variable resolution and template substitution."""

from __future__ import annotations

import pytest

from fleet_sim.policy.variables import RequestContext, ThingInfo, normalize_key, parse_template

CTX = RequestContext(
    "dev-1",
    source_ip="203.0.113.7",
    thing=ThingInfo("dev-1", type_name="sensor", attributes={"Color": "red", "Wild": "a*b"}),
    certificate_id="ab" * 32,
    subject={
        "CommonName": ("dev-1",),
        "OrganizationalUnit": ("ou0", "ou1", "ou2", "ou3", "ou4", "ou5"),
        "Organization": "Example Corp",
        "Title": ("a+b",),
        "Surname": ("x" * 1025,),
    },
    issuer={"CommonName": ("Example CA",), "Country": ("US",)},
    subject_alternative_names={"DNSName": ("a.example.com", "b.example.com")},
    certificate_serial_number="1234",
    certificate_not_after=2524607999.0,
    connect_attributes=("PersistentConnect", "LastWill"),
    last_will_topic="dev-1/will",
    region="eu-west-1",
    account_id="123456789012",
    now=1700000000.5,
)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("iot:ClientId", "dev-1"),
        ("IOT:CLIENTID", "dev-1"),  # names are case-insensitive
        ("aws:SourceIp", "203.0.113.7"),
        ("iot:CertificateId", "ab" * 32),
        ("iot:Connection.Thing.ThingName", "dev-1"),
        ("iot:Connection.Thing.ThingTypeName", "sensor"),
        ("iot:Connection.Thing.IsAttached", "true"),
        ("iot:Connection.Thing.Attributes[Color]", "red"),
        ("iot:connection.thing.attributes[Color]", "red"),
        ("iot:Connection.Thing.Attributes[color]", None),  # attribute names keep their case
        ("iot:Connection.Thing.Attributes[Wild]", "a*b"),  # thing values substitute (literally)
        ("iot:Connection.Thing.Attributes[Missing]", None),
        ("iot:Certificate.Subject.CommonName", "dev-1"),
        ("iot:Certificate.Subject.Organization", "Example Corp"),
        ("iot:Certificate.Subject.OrganizationalUnit", "ou0"),
        ("iot:Certificate.Subject.OrganizationalUnit.1", "ou1"),
        ("iot:Certificate.Subject.OrganizationalUnit.4", "ou4"),
        ("iot:Certificate.Subject.OrganizationalUnit.5", None),  # arrays capped at 5 items
        ("iot:Certificate.Subject.OrganizationalUnit.List", None),  # multi-valued: no substitution
        ("iot:Certificate.Subject.Title", None),  # contains '+': not substituted
        ("iot:Certificate.Subject.Surname", None),  # longer than 1024
        ("iot:Certificate.Subject.Country", None),  # not in this certificate
        ("iot:Certificate.Issuer.CommonName", "Example CA"),
        ("iot:Certificate.Issuer.Country", "US"),
        ("iot:Certificate.Subject.AlternativeName.DNSName", "a.example.com"),
        ("iot:Certificate.Subject.AlternativeName.DNSName.1", "b.example.com"),
        ("iot:Certificate.SerialNumber", "1234"),
        ("iot:Certificate.Validity.NotAfter", "2049-12-31T23:59:59Z"),
        ("iot:ConnectAttributes", None),  # multi-valued
        ("iot:LastWillTopic", "arn:aws:iot:eu-west-1:123456789012:topic/dev-1/will"),
        ("aws:CurrentTime", "2023-11-14T22:13:20Z"),
        ("aws:EpochTime", "1700000000"),
        ("iot:Nonsense", None),
    ],
)
def test_variable(name: str, value: str | None) -> None:
    assert CTX.variable(name) == value


@pytest.mark.parametrize(
    ("key", "values"),
    [
        ("iot:Certificate.Subject.OrganizationalUnit.List", ("ou0", "ou1", "ou2", "ou3", "ou4")),
        ("iot:Certificate.Subject.Title", ("a+b",)),  # conditions see values substitution hides
        (
            "iot:Certificate.Subject.AlternativeName.DNSName.List",
            ("a.example.com", "b.example.com"),
        ),
        ("iot:ConnectAttributes", ("PersistentConnect", "LastWill")),
        ("iot:Certificate.Subject.Country", None),
    ],
)
def test_key_values(key: str, values: tuple[str, ...] | None) -> None:
    assert CTX.key_values(key) == values


def test_thing_variables_need_an_attached_thing() -> None:
    no_thing = RequestContext("dev-1")
    detached = RequestContext("dev-1", thing=ThingInfo("dev-1", type_name="t", is_attached=False))
    assert no_thing.variable("iot:Connection.Thing.ThingName") is None
    assert no_thing.key_values("iot:Connection.Thing.IsAttached") is None
    assert detached.variable("iot:Connection.Thing.ThingName") is None
    assert detached.variable("iot:Connection.Thing.ThingTypeName") is None
    assert detached.variable("iot:Connection.Thing.IsAttached") == "false"


def test_last_will_topic_without_region_is_the_bare_topic() -> None:
    assert RequestContext("c", last_will_topic="w").variable("iot:LastWillTopic") == "w"


def test_extra_keys_override_and_add() -> None:
    ctx = RequestContext("c", extra_keys={"iot:ClientId": "other", "custom:Key": ("x", "y")})
    assert ctx.variable("iot:ClientId") == "other"
    assert ctx.key_values("custom:key") == ("x", "y")


def test_unknown_certificate_attribute_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown name 'CN'"):
        RequestContext("c", subject={"CN": ("x",)})
    with pytest.raises(ValueError, match="unknown name 'Locality'"):
        RequestContext("c", issuer={"Locality": ("x",)})
    with pytest.raises(ValueError, match="unknown name 'URI'"):
        RequestContext("c", subject_alternative_names={"URI": ("x",)})


def test_context_mappings_are_read_only() -> None:
    with pytest.raises(TypeError):
        CTX.subject["CommonName"] = ("x",)  # type: ignore[index]


def test_normalize_key() -> None:
    assert normalize_key("IoT:Connection.Thing.Attributes[MyAttr]") == (
        "iot:connection.thing.attributes[MyAttr]"
    )


# --------------------------------------------------------------------------- templates


def test_template_substitutes_literally() -> None:
    star = RequestContext("*")
    template = parse_template("arn:aws:iot:r:a:client/${iot:ClientId}")
    assert template.glob(star).matches("arn:aws:iot:r:a:client/*")
    assert not template.glob(star).matches("arn:aws:iot:r:a:client/anything")


def test_unresolved_variable_stays_literal() -> None:
    template = parse_template("topic/${iot:Connection.Thing.ThingName}/x")
    ctx = RequestContext("dev-1")
    assert template.text(ctx) == "topic/${iot:Connection.Thing.ThingName}/x"
    assert template.glob(ctx).matches("topic/${iot:Connection.Thing.ThingName}/x")
    assert not template.glob(ctx).matches("topic/dev-1/x")


@pytest.mark.parametrize(
    ("source", "text", "matches", "not_matches"),
    [
        ("a/${*}", "a/*", "a/*", "a/b"),
        ("a/${?}", "a/?", "a/?", "a/b"),
        ("${$}{x}", "${x}", "${x}", "$x"),
        ("$aws/x", "$aws/x", "$aws/x", "$awsx"),  # a bare '$' is literal
        ("a/${unclosed", "a/${unclosed", "a/${unclosed", "a/x"),
    ],
)
def test_escapes(source: str, text: str, matches: str, not_matches: str) -> None:
    template = parse_template(source)
    ctx = RequestContext("c")
    assert template.text(ctx) == text
    assert template.glob(ctx).matches(matches)
    assert not template.glob(ctx).matches(not_matches)


def test_without_variables_dollar_braces_are_plain_glob_text() -> None:
    template = parse_template("a/${iot:ClientId}/${*}", variables=False)
    ctx = RequestContext("dev-1")
    assert not template.has_variables
    assert template.glob(ctx).matches("a/${iot:ClientId}/${anything}")
    assert not template.glob(ctx).matches("a/dev-1/x")


def test_static_templates_are_compiled_once() -> None:
    template = parse_template("arn:*:topic/a/*")
    assert template.glob(RequestContext("a")) is template.glob(RequestContext("b"))
