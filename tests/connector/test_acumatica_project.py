"""The connector's customization project: project.xml as Acumatica exports items, and as the
simulator reads it; names and fields from the profile's settings; escaping; stable ids."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
import zipfile

import pytest

from connector.acumatica_project import (
    ProjectError,
    connector_project,
    project_name,
    push_notification_names,
)
from sandbox.acumatica import parse_project_xml
from setup_params.models import Profile, create_profile, get_profile

pytestmark = pytest.mark.django_db

NASTY_SECRET = "a<b>&c\"d'e ]]> ü€ \t end"


@pytest.fixture
def profile() -> Profile:
    return get_profile("default")


def project_root(profile: Profile, *, active: bool = True) -> ET.Element:
    package = connector_project(profile, active=active).package()
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        assert archive.namelist() == ["project.xml"]
        return ET.fromstring(archive.read("project.xml"))


def inquiry(root: ET.Element, name: str) -> ET.Element:
    rows = [row for row in root.findall(".//GIDesign/row") if row.get("Name") == name]
    assert len(rows) == 1, f"one generic inquiry {name}"
    return rows[0]


def results(design: ET.Element) -> dict[str, tuple[str, str]]:
    """Caption → (table alias, field) of each result column."""
    return {
        result.get("Caption"): (table.get("Alias"), result.get("Field"))
        for table in design.findall("GITable")
        for result in table.findall("GIResult")
    }


def hooks(root: ET.Element) -> dict[str, ET.Element]:
    return {row.get("Name"): row for row in root.findall(".//PushNotificationsHook/row")}


def test_project_xml_holds_both_inquiries_as_acumatica_exports_them(profile):
    root = project_root(profile)

    assert root.tag == "Customization"
    assert root.get("product-version") == "24.200"
    assert [item.tag for item in root] == [
        "GenericInquiryScreen",
        "GenericInquiryScreen",
        "PushNotification",
        "PushNotification",
    ]
    stock = inquiry(root, "MC-Inventory")
    assert stock.get("ExposeViaOData") == "1"
    assert [table.get("Name") for table in stock.findall("GITable")] == [
        "PX.Objects.IN.INSiteStatus",
        "PX.Objects.IN.InventoryItem",
        "PX.Objects.IN.INSite",
    ]
    joins = stock.findall("GITable/GIRelation")
    assert [(join.get("ChildTable"), join.find("GIOn").get("ParentField")) for join in joins] == [
        ("InventoryItem", "inventoryID"),
        ("INSite", "siteID"),
    ]
    assert results(stock) == {
        "InventoryID": ("InventoryItem", "inventoryCD"),
        "Warehouse": ("INSite", "siteCD"),
        "QtyAvailable": ("INSiteStatus", "qtyAvail"),
        "QtyOnHand": ("INSiteStatus", "qtyOnHand"),
        "LastModifiedDateTime": ("INSiteStatus", "lastModifiedDateTime"),
    }
    prices = inquiry(root, "MC-Prices")
    assert prices.get("ExposeViaOData") == "1"
    assert results(prices) == {
        "InventoryID": ("InventoryItem", "inventoryCD"),
        "DefaultPrice": ("InventoryItem", "basePrice"),
        "LastModifiedDateTime": ("InventoryItem", "lastModifiedDateTime"),
    }
    row_ids = [result.get("RowID") for result in root.iter("GIResult")]
    assert len(set(row_ids)) == len(row_ids) == 8


def test_push_notifications_go_to_the_receiver_with_the_header(profile):
    root = project_root(profile)
    design_ids = {row.get("Name"): row.get("DesignID") for row in root.findall(".//GIDesign/row")}

    found = hooks(root)

    assert list(found) == push_notification_names(profile)
    for name, inquiry_name in [
        ("Magento default inventory", "MC-Inventory"),
        ("Magento default price", "MC-Prices"),
    ]:
        hook = found[name]
        assert hook.get("Type") == "WEBH"
        assert hook.get("Address") == profile.push_url
        assert hook.get("Address").endswith("/acumatica/push/default/")
        assert hook.get("HeaderName") == "X-Connector-Secret"
        assert hook.get("HeaderValue") == profile.push_secret
        assert hook.get("Active") == "1"
        source = hook.find("PushNotificationsSource")
        assert source.get("SourceType") == "GI"
        assert source.get("DesignID") == design_ids[inquiry_name]
        assert source.get("Active") == "1"
    tracked = [
        (field.get("TableName"), field.get("FieldName"))
        for field in found["Magento default inventory"].iter("PushNotificationsTrackingField")
    ]
    assert tracked == [("INSiteStatus", "qtyOnHand"), ("INSiteStatus", "qtyAvail")]


def test_stop_makes_every_push_notification_inactive(profile):
    root = project_root(profile, active=False)

    assert {hook.get("Active") for hook in hooks(root).values()} == {"0"}
    assert {source.get("Active") for source in root.iter("PushNotificationsSource")} == {"0"}


def test_the_simulator_reads_the_project_as_published(profile):
    parsed = parse_project_xml(connector_project(profile).project_xml())

    kinds = {found.name: (found.kind, found.exposed_via_odata) for found in parsed.inquiries}
    assert kinds == {"MC-Inventory": ("inventory", True), "MC-Prices": ("prices", True)}
    by_design = {found.design_id: found.name for found in parsed.inquiries}
    assert [
        (push.name, by_design[push.inquiry], push.active, push.header_value)
        for push in parsed.push_notifications
    ] == [
        ("Magento default inventory", "MC-Inventory", True, profile.push_secret),
        ("Magento default price", "MC-Prices", True, profile.push_secret),
    ]


def test_names_and_fields_come_from_the_profile(profile):
    profile.inventory_query = "Stock For Shop"
    profile.price_query = "Prices For Shop"
    profile.inventory_sku_field = "SKU"
    profile.inventory_warehouse_field = "Site"
    profile.inventory_qty_field = "QtyOnHand"
    profile.price_sku_field = "ItemCode"
    profile.price_field = "BasePrice"
    profile.push_header_name = "X-Shop-Key"

    root = project_root(profile)

    assert set(results(inquiry(root, "Stock For Shop"))) == {
        "SKU", "Site", "QtyAvailable", "QtyOnHand", "LastModifiedDateTime"
    }
    assert set(results(inquiry(root, "Prices For Shop"))) == {
        "ItemCode", "BasePrice", "LastModifiedDateTime"
    }
    assert {hook.get("HeaderName") for hook in hooks(root).values()} == {"X-Shop-Key"}


def test_a_secret_with_any_character_is_escaped_and_read_back(profile):
    profile.push_secret = NASTY_SECRET

    xml = connector_project(profile).project_xml()

    assert NASTY_SECRET.encode() not in xml  # not written raw
    assert {hook.get("HeaderValue") for hook in hooks(ET.fromstring(xml)).values()} == {
        NASTY_SECRET
    }
    assert {push.header_value for push in parse_project_xml(xml).push_notifications} == {
        NASTY_SECRET
    }


@pytest.mark.parametrize("secret", ["line\nbreak", "carriage\rreturn", "nul\x00byte", "bell\x07"])
def test_a_secret_a_header_cannot_carry_is_refused(profile, secret):
    profile.push_secret = secret

    with pytest.raises(ProjectError, match="rotate it on Setup Parameters"):
        connector_project(profile)


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("inventory_qty_field", "QtyHardAvailable", "use QtyAvailable or QtyOnHand"),
        ("inventory_sku_field", "Inventory ID", "use letters, digits and '_' only"),
        ("price_field", "InventoryID", "must differ from each other"),
        ("inventory_warehouse_field", "lastmodifieddatetime", "must differ from each other"),
        ("price_query", "mc-inventory", "two different names"),
        ("push_header_name", "X Secret", "not a valid HTTP header name"),
    ],
)
def test_settings_that_cannot_make_a_project_are_named(profile, setting, value, message):
    setattr(profile, setting, value)

    with pytest.raises(ProjectError, match=message):
        connector_project(profile)


def test_ids_are_stable_so_a_republish_replaces_instead_of_adding(profile):
    first = connector_project(profile)
    again = connector_project(get_profile("default"))

    assert first.package() == again.package()
    other = connector_project(create_profile("shop-two"))
    assert [push.hook_id for push in other.push_notifications] != [
        push.hook_id for push in first.push_notifications
    ]
    # The same inquiry name is the same inquiry on one instance, whichever profile publishes.
    assert [found.design_id for found in other.inquiries] == [
        found.design_id for found in first.inquiries
    ]


def test_project_names_are_per_profile(db):
    assert project_name(get_profile("default")) == "MagentoConnector_default"
    assert project_name(create_profile("shop-two")) == "MagentoConnector_shop_two"
    assert push_notification_names(get_profile("shop-two")) == [
        "Magento shop-two inventory",
        "Magento shop-two price",
    ]
