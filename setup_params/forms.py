from __future__ import annotations

from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Div, Field, Fieldset, Layout
from django import forms
from django.utils.html import escape

from setup_params.models import AcumaticaSettings, MagentoSettings, Profile, QueueSettings
from setup_params.services import SECRET_SET
from setup_params.validation import (
    ACUMATICA_FIELDS,
    MAGENTO_INPUT_LIMIT,
    InvalidSetting,
    check_secret,
    check_setting,
    check_sleep_time,
    check_token,
    check_token_confirmation,
    clean_acumatica_url,
    clean_magento_url,
)

CONNECTION_FIELDS = (
    "magento_url",
    "store_code",
    "price_store_id",
    "source_code",
    "use_msi",
    "magento_token",
    "magento_token_confirm",
    "timeout",
    "verify_tls",
)
# The connection fields stored as they are (the token and the stock choice are not).
MAGENTO_FIELDS = (
    "magento_url", "store_code", "price_store_id", "source_code", "timeout", "verify_tls",
)
QUEUE_FIELDS = (
    "threshold_count",
    "batch_count",
    "retry_count",
    "check_process_time",
    "process_sleep_time",
    "senders",
)
STOCK_MSI = "msi"
STOCK_LEGACY = "legacy"
STOCK_CHOICES = [
    (STOCK_MSI, "MSI: source items on the MSI source code"),
    (STOCK_LEGACY, "No MSI: legacy stock items, one product a call"),
]


def _token_widget() -> forms.PasswordInput:
    # Never rendered back: the page shows only whether a token is stored.
    return forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})


class SetupParametersForm(forms.Form):
    """Connection Settings (MagentoSettings) and Queue Processing Settings (QueueSettings).

    Values are checked by setup_params.validation, the same rules `connector_config set`
    uses. An empty token field keeps the stored token.
    """

    magento_url = forms.CharField(label="Magento URL", max_length=500)
    store_code = forms.CharField(label="Store code", max_length=64)
    price_store_id = forms.IntegerField(label="Price store id")
    source_code = forms.CharField(label="MSI source code", max_length=64)
    use_msi = forms.TypedChoiceField(
        label="Stock updates", choices=STOCK_CHOICES, coerce=lambda choice: choice == STOCK_MSI,
        widget=forms.RadioSelect,
    )
    magento_token = forms.CharField(label="Bearer Token", required=False, widget=_token_widget())
    magento_token_confirm = forms.CharField(
        label="Confirm Bearer Token", required=False, widget=_token_widget()
    )
    timeout = forms.IntegerField(label="Timeout (s)")
    verify_tls = forms.BooleanField(label="Verify TLS", required=False)

    threshold_count = forms.IntegerField(label="Threshold Count")
    batch_count = forms.IntegerField(label="Batch Count")
    retry_count = forms.IntegerField(label="Retry Count")
    check_process_time = forms.IntegerField(label="Check Process Time (s)")
    process_sleep_time = forms.IntegerField(label="Process Sleep Time (s)")
    senders = forms.IntegerField(label="Senders")

    def __init__(self, data=None, *, profile: Profile, editable: bool = True, **kwargs) -> None:
        self.profile = profile
        magento, queue = profile.magento_settings, profile.queue_settings
        initial = {name: getattr(magento, name) for name in MAGENTO_FIELDS}
        initial["use_msi"] = STOCK_MSI if magento.use_msi else STOCK_LEGACY
        initial.update({name: getattr(queue, name) for name in QUEUE_FIELDS})
        super().__init__(data, initial=initial, **kwargs)
        self.url_notice = ""

        for name, field in self.fields.items():
            model = QueueSettings if name in QUEUE_FIELDS else MagentoSettings
            if not field.help_text and name in {f.name for f in model._meta.get_fields()}:
                # Templates show help text unescaped: "/rest/<store code>/V1" must stay text.
                field.help_text = escape(model._meta.get_field(name).help_text)
            field.disabled = not editable
        self._describe_token_fields(magento.has_token)

        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.disable_csrf = True
        self.helper.layout = Layout(
            Div(
                Div(
                    Fieldset("Connection Settings", *[Field(name) for name in CONNECTION_FIELDS]),
                    css_class="col-lg-6",
                ),
                Div(
                    Fieldset("Queue Processing Settings", *[Field(name) for name in QUEUE_FIELDS]),
                    css_class="col-lg-6",
                ),
                css_class="row g-4",
            )
        )

    def _describe_token_fields(self, token_stored: bool) -> None:
        token, confirm = self.fields["magento_token"], self.fields["magento_token_confirm"]
        if token_stored:
            for field in (token, confirm):
                field.widget.attrs["placeholder"] = SECRET_SET
            token.help_text = (
                f"A token is stored ({SECRET_SET}). Leave both token fields empty to keep it."
            )
        else:
            token.help_text = (
                "The access token of a Magento integration (System › Extensions › "
                "Integrations). No token is stored yet."
            )
        confirm.help_text = "Type the token again."

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for name in (*CONNECTION_FIELDS, *QUEUE_FIELDS):
            if name not in cleaned or name.startswith("magento_token"):
                continue
            try:
                if name == "magento_url":
                    cleaned[name], self.url_notice = clean_magento_url(cleaned[name])
                else:
                    cleaned[name] = check_setting(name, cleaned[name])
            except InvalidSetting as error:
                self.add_error(name, str(error))
        self._clean_token(cleaned)
        sleep, check = cleaned.get("process_sleep_time"), cleaned.get("check_process_time")
        if sleep is not None and check is not None:
            try:
                check_sleep_time(sleep, check)
            except InvalidSetting as error:
                self.add_error("process_sleep_time", str(error))
        return cleaned

    def _clean_token(self, cleaned: dict[str, Any]) -> None:
        token = cleaned.get("magento_token", "")
        confirmation = cleaned.get("magento_token_confirm", "")
        if not token and not confirmation:
            return  # keep the stored token
        try:
            check_token_confirmation(token, confirmation)
        except InvalidSetting as error:
            self.add_error("magento_token_confirm", str(error))
            return
        try:
            cleaned["magento_token"] = check_token(token)
        except InvalidSetting as error:
            self.add_error("magento_token", str(error))

    def typed_token(self) -> str | None:
        """The token typed in the form, or None to use the stored one."""
        return self.cleaned_data.get("magento_token") or None

    def values(self) -> dict[str, Any]:
        """The checked values by setting key, for setup_params.services.save_settings."""
        values = {
            name: self.cleaned_data[name] for name in (*MAGENTO_FIELDS, "use_msi", *QUEUE_FIELDS)
        }
        if self.typed_token():
            values["magento_token"] = self.typed_token()
        return values

    def connection_errors(self) -> bool:
        return any(name in self.errors for name in CONNECTION_FIELDS)

    def magento_settings_typed(self) -> MagentoSettings:
        """An unsaved copy of the Magento settings as typed (the stored token kept)."""
        stored = self.profile.magento_settings
        typed = MagentoSettings(profile=self.profile, token_encrypted=stored.token_encrypted)
        for name in (*MAGENTO_FIELDS, "use_msi"):
            setattr(typed, name, self.cleaned_data[name])
        return typed

    def batch_count_over_input_limit(self) -> bool:
        """Batch count (as typed when valid, else stored) above Magento's input limit."""
        batch_count = self.profile.queue_settings.batch_count
        if self.is_bound and "batch_count" in getattr(self, "cleaned_data", {}):
            batch_count = self.cleaned_data["batch_count"]
        return batch_count > MAGENTO_INPUT_LIMIT


# --- Acumatica Connection ----------------------------------------------------------------------

ACUMATICA_INSTANCE_FIELDS = (
    "acumatica_url",
    "acumatica_endpoint",
    "acumatica_version",
    "acumatica_tenant",
    "acumatica_branch",
)
ACUMATICA_SIGN_IN_FIELDS = (
    "acumatica_auth",
    "acumatica_username",
    "acumatica_password",
    "acumatica_client_id",
    "acumatica_client_secret",
    "acumatica_scopes",
)
ACUMATICA_LIMIT_FIELDS = (
    "acumatica_concurrency",
    "acumatica_time_zone",
    "acumatica_time_offset",
    "acumatica_page_size",
    "acumatica_batch_size",
    "acumatica_timeout",
)
ACUMATICA_SECRETS = ("acumatica_password", "acumatica_client_secret")
# What Test Connection uses: the rest (limits, time) does not change whether a sign-in works.
ACUMATICA_CONNECTION_FIELDS = (*ACUMATICA_INSTANCE_FIELDS, *ACUMATICA_SIGN_IN_FIELDS,
                               "acumatica_timeout")
ACUMATICA_HELP = {
    "acumatica_endpoint": "The web-service endpoint the connector reads through (Web Service "
    "Endpoints, SM207060).",
    "acumatica_branch": "The branch to sign in to; empty uses the user's default branch.",
    "acumatica_auth": "Cookie: the connector signs in with the username and password and "
    "signs out after each operation. OAuth 2.0: a Connected Application (SM303010); sign "
    "in with Acumatica below, or give a username and password for the password flow.",
    "acumatica_username": "An Acumatica user allowed to use the web services API.",
    "acumatica_scopes": "Separated by spaces; offline_access lets the connector renew its "
    "access without signing in again.",
    "acumatica_time_offset": "Seconds subtracted from the watermark of catch-up reads "
    "(0–3600), so that a change saved while a read ran is not missed.",
    "acumatica_page_size": "Records per request when reading from Acumatica ($top; 1–10000).",
    "acumatica_batch_size": "Records handled per batch of a full load (1–10000).",
    "acumatica_timeout": "Seconds to wait for Acumatica's answer (1–600).",
}
SECRET_NAMES = {"acumatica_password": "password", "acumatica_client_secret": "client secret"}


def _secret_widget() -> forms.PasswordInput:
    return forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})


class AcumaticaConnectionForm(forms.Form):
    """The Acumatica Connection screen (AcumaticaSettings), checked by setup_params.validation.

    Field names are the `connector_config` keys. An empty password or client secret keeps
    the stored one; neither is ever rendered back.
    """

    acumatica_url = forms.CharField(label="Instance URL", max_length=500)
    acumatica_endpoint = forms.ChoiceField(label="Endpoint name",
                                           choices=AcumaticaSettings.Endpoint.choices)
    acumatica_version = forms.CharField(label="Endpoint version", max_length=20)
    acumatica_tenant = forms.CharField(label="Tenant", max_length=100, required=False)
    acumatica_branch = forms.CharField(label="Branch", max_length=100, required=False)
    acumatica_auth = forms.ChoiceField(label="Authentication type",
                                       choices=AcumaticaSettings.Auth.choices,
                                       widget=forms.RadioSelect)
    acumatica_username = forms.CharField(label="Username", max_length=150, required=False)
    acumatica_password = forms.CharField(label="Password", required=False,
                                         strip=False, widget=_secret_widget())
    acumatica_client_id = forms.CharField(label="Client ID", max_length=200, required=False)
    acumatica_client_secret = forms.CharField(label="Client secret", required=False,
                                              strip=False, widget=_secret_widget())
    acumatica_scopes = forms.CharField(label="Scopes", max_length=200)
    acumatica_concurrency = forms.IntegerField(label="Concurrency level")
    acumatica_time_zone = forms.CharField(
        label="Time zone", max_length=64,
        widget=forms.TextInput(attrs={"list": "time-zones", "autocomplete": "off"}),
    )
    acumatica_time_offset = forms.IntegerField(label="Time offset (s)")
    acumatica_page_size = forms.IntegerField(label="Page size")
    acumatica_batch_size = forms.IntegerField(label="Batch size")
    acumatica_timeout = forms.IntegerField(label="Timeout (s)")

    def __init__(self, data=None, *, profile: Profile, editable: bool = True, **kwargs) -> None:
        self.profile = profile
        stored = profile.acumatica_settings
        initial = {
            key: getattr(stored, name)
            for key, name in ACUMATICA_FIELDS.items()
            if key not in ACUMATICA_SECRETS
        }
        super().__init__(data, initial=initial, **kwargs)
        self.url_notice = ""

        self.fields["acumatica_version"].widget.attrs.update(
            {"list": "acumatica-versions", "autocomplete": "off"}
        )
        for key, field in self.fields.items():
            if key not in ACUMATICA_SECRETS:  # those say whether one is stored, below
                help_text = ACUMATICA_HELP.get(key) or AcumaticaSettings._meta.get_field(
                    ACUMATICA_FIELDS[key]
                ).help_text
                # Templates show help text unescaped: "<GUID>@<Tenant>" must stay text.
                field.help_text = escape(help_text)
            field.disabled = not editable
        self._describe_secret_fields(stored)

        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.disable_csrf = True
        self.helper.layout = Layout(
            Div(
                Div(Fieldset("Instance", *ACUMATICA_INSTANCE_FIELDS), css_class="col-lg-4"),
                Div(Fieldset("Sign-in", *ACUMATICA_SIGN_IN_FIELDS), css_class="col-lg-4"),
                Div(Fieldset("Limits and time", *ACUMATICA_LIMIT_FIELDS), css_class="col-lg-4"),
                css_class="row g-4",
            )
        )

    def _describe_secret_fields(self, stored: AcumaticaSettings) -> None:
        columns = {
            "acumatica_password": stored.password_encrypted,
            "acumatica_client_secret": stored.client_secret_encrypted,
        }
        for key, column in columns.items():
            field, name = self.fields[key], SECRET_NAMES[key]
            if column:
                field.widget.attrs["placeholder"] = SECRET_SET
                field.help_text = f"A {name} is stored ({SECRET_SET}). Leave empty to keep it."
            else:
                field.help_text = f"No {name} is stored yet."
        self.fields["acumatica_password"].help_text += (
            " For cookie sign-in and the OAuth password flow."
        )
        self.fields["acumatica_client_secret"].help_text += (
            " The shared secret of the Connected Application (SM303010)."
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for key in ACUMATICA_FIELDS:
            if key not in cleaned:
                continue
            try:
                if key == "acumatica_url":
                    cleaned[key], self.url_notice = clean_acumatica_url(cleaned[key])
                elif key in ACUMATICA_SECRETS:
                    if cleaned[key]:  # empty keeps the stored one
                        cleaned[key] = check_secret(key, cleaned[key])
                else:
                    cleaned[key] = check_setting(key, cleaned[key])
            except InvalidSetting as error:
                self.add_error(key, str(error))
        return cleaned

    def values(self) -> dict[str, Any]:
        """The checked values by setting key, for setup_params.services.save_settings."""
        return {
            key: self.cleaned_data[key]
            for key in ACUMATICA_FIELDS
            if key not in ACUMATICA_SECRETS or self.cleaned_data.get(key)
        }

    def client_overrides(self) -> dict[str, Any]:
        """What is typed, by connector.acumatica's names, for Test Connection (unsaved)."""
        return {
            ACUMATICA_FIELDS[key]: self.cleaned_data[key]
            for key in ACUMATICA_CONNECTION_FIELDS
            if key not in ACUMATICA_SECRETS or self.cleaned_data.get(key)
        }

    def connection_errors(self) -> bool:
        return any(key in self.errors for key in ACUMATICA_CONNECTION_FIELDS)

    def typed_secrets(self) -> bool:
        return any(self.cleaned_data.get(key) for key in ACUMATICA_SECRETS)

    def typed_endpoint(self) -> str:
        if self.is_bound and "acumatica_endpoint" in getattr(self, "cleaned_data", {}):
            return self.cleaned_data["acumatica_endpoint"]
        return self.profile.acumatica_settings.endpoint
