"""The connector's customization project for Acumatica (DESIGN.md sections 7 and 9).

Two generic inquiries, exposed via OData, and a push notification on each:

- the stock inquiry (`profile.inventory_query`, MC-Inventory): INSiteStatus joined to
  InventoryItem and INSite: the SKU, the warehouse, QtyAvailable, QtyOnHand and the warehouse
  status's LastModifiedDateTime (stock movements leave InventoryItem's untouched);
- the price inquiry (`profile.price_query`, MC-Prices): InventoryItem: the SKU, the base
  price, LastModifiedDateTime;
- their push notifications: destination type Webhook, Address = the profile's receiver,
  Header Name / Value = the profile's push header and secret, Active or not (Stop).

The result columns' captions are the profile's field names, so the rows Acumatica pushes carry
the keys the receiver reads. The XML is in `connector/acumatica_templates/`, one file per item,
so a real export can replace a template; this module fills the templates' `{{placeholders}}`
in attribute values after parsing, so the XML writer escapes whatever a value holds (the
secret may contain any character XML can carry), and zips `project.xml`.
"""

from __future__ import annotations

import copy
import io
import re
import uuid
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from message_queue.models import Entity
from setup_params.models import Profile

PROJECT_NAME_PREFIX = "MagentoConnector"
TEMPLATES_DIR = Path(__file__).resolve().parent / "acumatica_templates"
INVENTORY_TEMPLATE = "GenericInquiryScreen_inventory.xml"
PRICES_TEMPLATE = "GenericInquiryScreen_prices.xml"
PUSH_NOTIFICATION_TEMPLATE = "PushNotification.xml"
TRACKING_FIELD_ELEMENT = "PushNotificationsTrackingField"
DEFAULT_PRODUCT_VERSION = "24.200"
# DesignIDs, HookIds and RowIDs are uuid5 names in this namespace: building the project again
# gives the same ids, so a republish replaces the inquiries and push notifications instead of
# adding copies next to them.
ID_NAMESPACE = uuid.UUID("6f1c9b52-4d0e-4a8b-9c3e-2b7d5a1e8f40")

# The stock inquiry always shows both quantities; the profile's quantity field picks one.
INVENTORY_QUANTITY_CAPTIONS = ("QtyAvailable", "QtyOnHand")
LAST_MODIFIED_CAPTION = "LastModifiedDateTime"
# Which table columns make Acumatica send a push notification (the Fields tab of SM302000).
TRACKED_FIELDS = {
    Entity.INVENTORY: (("INSiteStatus", "qtyOnHand"), ("INSiteStatus", "qtyAvail")),
    Entity.PRICE: (("InventoryItem", "basePrice"),),
}

# A caption becomes the key of the pushed rows and the OData property: a plain identifier.
FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# RFC 9110 token: what an HTTP header name may be.
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Characters XML 1.0 cannot carry at all, even escaped; CR and LF cannot be in a header value.
NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
LINE_BREAK = re.compile("[\r\n]")
PLACEHOLDER = re.compile(r"\{\{([a-z_]+)(?::([a-z_]+))?\}\}")


class ProjectError(ValueError):
    """The profile's settings cannot make a valid project; the text says which setting."""


@dataclass(frozen=True)
class Inquiry:
    entity: str
    name: str
    design_id: str
    template: str
    captions: Mapping[str, str]
    tracked_fields: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class PushNotification:
    name: str
    hook_id: str
    inquiry: Inquiry
    address: str
    header_name: str
    header_value: str = field(repr=False)
    active: bool


@dataclass(frozen=True)
class ConnectorProject:
    name: str
    description: str
    product_version: str
    inquiries: tuple[Inquiry, ...]
    push_notifications: tuple[PushNotification, ...]

    def project_xml(self) -> bytes:
        """`<Customization>` with one item per inquiry and per push notification."""
        root = ET.Element(
            "Customization",
            {"level": "", "description": self.description, "product-version": self.product_version},
        )
        for inquiry in self.inquiries:
            root.append(_inquiry_item(inquiry))
        for push_notification in self.push_notifications:
            root.append(_push_notification_item(push_notification))
        ET.indent(root, space="    ")
        buffer = io.BytesIO()
        ET.ElementTree(root).write(buffer, encoding="utf-8", xml_declaration=True)
        return buffer.getvalue()

    def package(self) -> bytes:
        """The ZIP the Customization API imports (and an administrator can import by hand)."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            # A fixed date: the same settings give the same bytes.
            entry = zipfile.ZipInfo("project.xml", date_time=(2024, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, self.project_xml())
        return buffer.getvalue()


def project_name(profile: Profile) -> str:
    """`MagentoConnector_default`: Acumatica's project names take letters, digits and `_`."""
    return f"{PROJECT_NAME_PREFIX}_{re.sub(r'[^A-Za-z0-9]', '_', profile.name)}"


def push_notification_name(profile: Profile, entity: str) -> str:
    return f"Magento {profile.name} {entity}"


def push_notification_names(profile: Profile) -> list[str]:
    """The names on Acumatica's Push Notifications form (SM302000), inventory first."""
    return [push_notification_name(profile, entity) for entity in (Entity.INVENTORY,
                                                                   Entity.PRICE)]


def connector_project(profile: Profile, *, active: bool = True) -> ConnectorProject:
    """The project for a profile; `active=False` for Stop. Raises `ProjectError`."""
    inventory_captions = {
        "sku_caption": profile.inventory_sku_field,
        "warehouse_caption": profile.inventory_warehouse_field,
    }
    price_captions = {
        "sku_caption": profile.price_sku_field,
        "price_caption": profile.price_field,
    }
    _check_captions("inventory", [*inventory_captions.values(), *INVENTORY_QUANTITY_CAPTIONS])
    _check_captions("price", [*price_captions.values()])
    if profile.inventory_qty_field not in INVENTORY_QUANTITY_CAPTIONS:
        raise ProjectError(
            f"The inventory quantity field '{profile.inventory_qty_field}' is not a column of "
            f"the connector's stock inquiry: use {' or '.join(INVENTORY_QUANTITY_CAPTIONS)}, "
            "or set up Acumatica by hand."
        )
    names = [profile.inventory_query.strip(), profile.price_query.strip()]
    if not all(names) or names[0].lower() == names[1].lower():
        raise ProjectError(
            "The inventory and price inquiries need two different names "
            f"(now '{profile.inventory_query}' and '{profile.price_query}')."
        )
    header_name = profile.push_header_name
    if not HEADER_NAME.match(header_name):
        raise ProjectError(f"The push header name '{header_name}' is not a valid HTTP header name.")
    header_value = profile.push_secret
    if NOT_IN_XML.search(header_value) or LINE_BREAK.search(header_value):
        raise ProjectError(
            "The push secret holds a control character that a header cannot carry: rotate it "
            "on Setup Parameters."
        )
    address = profile.push_url
    if NOT_IN_XML.search(address):
        raise ProjectError(f"The push address {address!r} holds a control character.")

    inquiries = (
        Inquiry(Entity.INVENTORY, names[0], _id("inquiry", names[0]), INVENTORY_TEMPLATE,
                inventory_captions, TRACKED_FIELDS[Entity.INVENTORY]),
        Inquiry(Entity.PRICE, names[1], _id("inquiry", names[1]), PRICES_TEMPLATE,
                price_captions, TRACKED_FIELDS[Entity.PRICE]),
    )
    push_notifications = tuple(
        PushNotification(
            name=push_notification_name(profile, inquiry.entity),
            hook_id=_id("push notification", profile.name, inquiry.entity),
            inquiry=inquiry,
            address=address,
            header_name=header_name,
            header_value=header_value,
            active=active,
        )
        for inquiry in inquiries
    )
    return ConnectorProject(
        name=project_name(profile),
        description=f"Acumatica-Magento connector, profile {profile.name}: generic inquiries "
        f"{names[0]} and {names[1]} and their push notifications.",
        product_version=_product_version(profile),
        inquiries=inquiries,
        push_notifications=push_notifications,
    )


# --- the items ----------------------------------------------------------------------------


def _inquiry_item(inquiry: Inquiry) -> ET.Element:
    item = _template(inquiry.template)
    _fill(item, {"design_id": inquiry.design_id, "name": inquiry.name, **inquiry.captions},
          row_ids=uuid.UUID(inquiry.design_id))
    return item


def _push_notification_item(push_notification: PushNotification) -> ET.Element:
    item = _template(PUSH_NOTIFICATION_TEMPLATE)
    parent, tracking_field = _detach(item, TRACKING_FIELD_ELEMENT)
    flag = "1" if push_notification.active else "0"
    _fill(
        item,
        {
            "hook_id": push_notification.hook_id,
            "name": push_notification.name,
            "address": push_notification.address,
            "header_name": push_notification.header_name,
            "header_value": push_notification.header_value,
            "active": flag,
            "design_id": push_notification.inquiry.design_id,
        },
    )
    for table, field_name in push_notification.inquiry.tracked_fields:
        tracked = copy.deepcopy(tracking_field)
        _fill(tracked, {"tracked_table": table, "tracked_field": field_name})
        parent.append(tracked)
    return item


def _template(name: str) -> ET.Element:
    """The template's root element (its comments are dropped by the parser)."""
    return ET.parse(TEMPLATES_DIR / name).getroot()


def _fill(root: ET.Element, values: Mapping[str, str], row_ids: uuid.UUID | None = None) -> None:
    """Replace `{{name}}` (and `{{row_id:label}}`) in every attribute value under `root`."""

    def value_of(match: re.Match[str]) -> str:
        name, label = match[1], match[2]
        if name == "row_id" and label and row_ids is not None:
            return str(uuid.uuid5(row_ids, label))
        if label is None and name in values:
            return values[name]
        raise ProjectError(f"The template placeholder {match[0]} has no value.")

    for element in root.iter():
        for key, value in list(element.attrib.items()):
            if "{{" in value:
                element.set(key, PLACEHOLDER.sub(value_of, value))


def _detach(root: ET.Element, tag: str) -> tuple[ET.Element, ET.Element]:
    for parent in root.iter():
        for child in list(parent):
            if child.tag == tag:
                parent.remove(child)
                return parent, child
    raise ProjectError(f"The push notification template has no {tag} element.")


def _check_captions(inquiry: str, captions: list[str]) -> None:
    for caption in captions:
        if not FIELD_NAME.match(caption or ""):
            raise ProjectError(
                f"The {inquiry} field name '{caption}' cannot be a column of the connector's "
                "inquiry: use letters, digits and '_' only (e.g. InventoryID)."
            )
    folded = [caption.lower() for caption in [*captions, LAST_MODIFIED_CAPTION]]
    if len(set(folded)) != len(folded):
        raise ProjectError(
            f"The {inquiry} field names must differ from each other and from "
            f"{LAST_MODIFIED_CAPTION}: {', '.join(captions)}."
        )


def _id(*parts: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, "\n".join(parts)))


def _product_version(profile: Profile) -> str:
    """`24.200` from the endpoint version `24.200.001` (the instance's release, near enough)."""
    try:
        version = profile.acumatica_settings.version
    except Profile.acumatica_settings.RelatedObjectDoesNotExist:
        return DEFAULT_PRODUCT_VERSION
    match = re.match(r"^(\d+\.\d+)", version or "")
    return match[1] if match else DEFAULT_PRODUCT_VERSION
