from __future__ import annotations

from django import forms

from sandbox.demo import MAX_SIMULATED_CHANGES

DEFAULT_SIMULATED_CHANGES = 5


class SimulateChangesForm(forms.Form):
    count = forms.IntegerField(
        label="Changes",
        initial=DEFAULT_SIMULATED_CHANGES,
        min_value=1,
        max_value=MAX_SIMULATED_CHANGES,
        help_text="Random price or stock changes the simulated Acumatica makes and pushes.",
    )
