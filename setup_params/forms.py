from __future__ import annotations

from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Div, Field, Fieldset, Layout
from django import forms
from django.utils.html import escape

from setup_params.models import MagentoSettings, Profile, QueueSettings
from setup_params.services import SECRET_SET
from setup_params.validation import (
    MAGENTO_INPUT_LIMIT,
    InvalidSetting,
    check_setting,
    check_sleep_time,
    check_token,
    check_token_confirmation,
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
