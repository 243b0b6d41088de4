"""Forms of the HR pages: an employee with their consent and new photos."""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.core.exceptions import ValidationError

from identity import enrollment
from identity.models import Employee

CONSENT_REQUIRED_MESSAGE = (
    "Photos can only be accepted once the employee's consent to biometric processing is recorded. "
    "Ask the employee for consent, tick “Biometric consent recorded”, then add the photos again."
)


@dataclass(frozen=True)
class Photo:
    """An uploaded photo, read into memory once the form has checked it."""

    filename: str
    data: bytes


class MultiplePhotoInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultiplePhotoField(forms.FileField):
    """Several photos in one file input; cleans to a list of ``Photo``."""

    widget = MultiplePhotoInput

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)
        self.widget.attrs.setdefault("accept", "image/*")

    def clean(self, data, initial=None) -> list[Photo]:
        uploads = data if isinstance(data, (list, tuple)) else [data] if data else []
        photos, errors = [], []
        for upload in uploads:
            content = upload.read()
            try:
                enrollment.check_upload(content, upload.name)
            except ValidationError as error:
                errors.extend(error.messages)
            else:
                photos.append(Photo(upload.name, content))
        if errors:
            raise ValidationError(errors)
        if self.required and not photos:
            raise ValidationError(self.error_messages["required"], code="required")
        return photos


class EmployeeForm(forms.ModelForm):
    consent = forms.BooleanField(
        label="Biometric consent recorded",
        required=False,
        help_text="Tick once the employee has agreed to FRID processing their face. "
        "No photo is accepted without it.",
    )
    training_consent = forms.BooleanField(
        label="Training consent recorded",
        required=False,
        help_text="Tick once the employee has agreed to their photos and verified kiosk captures being used "
        "to improve recognition (fine-tuning the network, automatic templates). Optional, apart from the "
        "biometric consent.",
    )
    photos = MultiplePhotoField(
        label="Add photos",
        help_text="Choose one or more photos of the employee alone, facing the camera, or take them "
        "with the camera below. Each photo is checked in the background.",
    )

    class Meta:
        model = Employee
        fields = ["employee_number", "name", "email", "department", "is_active"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["consent"].initial = self.instance.consent_recorded_at is not None
        self.fields["training_consent"].initial = self.instance.training_consent_recorded_at is not None

    def clean(self) -> dict:
        cleaned_data = super().clean()
        if cleaned_data.get("photos") and not cleaned_data.get("consent"):
            self.add_error("photos", CONSENT_REQUIRED_MESSAGE)
        return cleaned_data
