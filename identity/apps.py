from django.apps import AppConfig


class IdentityConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'identity'

    def ready(self):
        # Training runs ask for employees' faces and hand accepted versions over through signals
        # (training knows nothing of employees): connect the receivers.
        from identity import tasks, training_data  # noqa: F401
