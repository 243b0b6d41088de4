"""Template tags of the pages people use: the header's links, from identity.pages."""

from django import template

from identity import pages

register = template.Library()


@register.simple_tag(takes_context=True)
def destinations(context) -> list[pages.Destination]:
    """Where the person viewing the page may go (``{% destinations as links %}``)."""
    user = context.get("user")  # absent where a page is rendered without the request's context
    return pages.destinations_for(user) if user is not None else []
