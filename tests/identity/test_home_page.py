"""The home page: what FRID is, and the links each role may follow.

Who sees which link: everyone the kiosk page; logged-in users their own check-in and attendance;
HR and auditors (identity.view_attendanceevent) the reports; staff the admin; the anonymous "Log in".
"""

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from identity import roles
from identity.models import Employee

from tests.identity.browser import (  # noqa: F401 (browser_allowed: a fixture)
    SCREENSHOTS_DIR,
    browser_allowed,
    camera_browser,
    keep_screenshot,
    write_y4m,
)

KIOSK = reverse("kiosk")
CHECK_IN = reverse("check-in")
MY_ATTENDANCE = reverse("my-attendance")
REPORTS = reverse("attendance-report")
ADMIN = reverse("admin:index")
LOGIN = reverse("login")


def links(response) -> set[str]:
    """The home page's own links (the cards), not the header's."""
    content = response.content.decode()
    cards = content[content.index('class="links"'):]
    return {href for href in (KIOSK, CHECK_IN, MY_ATTENDANCE, REPORTS, ADMIN, LOGIN) if f'href="{href}"' in cards}


def role_group(name: str) -> Group:
    """The role's group, made by migration; again after a transactional test emptied the tables."""
    group, created = Group.objects.get_or_create(name=name)
    if created:
        for permission in roles.GROUP_PERMISSIONS[name]:
            app_label, codename = permission.split(".")
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return group


def user_in(django_user_model, username: str, group: str | None = None, **options):
    user = django_user_model.objects.create_user(username, password="a-long-password-1", **options)
    if group:
        user.groups.add(role_group(group))
    return user


def test_it_says_what_frid_is_and_offers_the_kiosk_and_log_in_to_visitors(client):
    response = client.get(reverse("home"))

    assert response.status_code == 200
    assert b"FRID recognises employees at a webcam" in response.content
    assert links(response) == {KIOSK, LOGIN}


def test_an_employee_gets_their_check_in_and_attendance_but_no_reports_or_admin(client, django_user_model):
    user = user_in(django_user_model, "ann")
    Employee.objects.create(employee_number="E1", name="Ann", user=user)
    client.force_login(user)

    response = client.get(reverse("home"))

    assert links(response) == {KIOSK, CHECK_IN, MY_ATTENDANCE}
    assert b"Log out" in response.content


@pytest.mark.parametrize("group", [roles.HR, roles.AUDITOR])
def test_hr_and_auditors_also_get_the_attendance_reports(client, django_user_model, group):
    client.force_login(user_in(django_user_model, group.lower(), group))

    response = client.get(reverse("home"))

    assert links(response) == {KIOSK, CHECK_IN, MY_ATTENDANCE, REPORTS}


def test_staff_also_get_the_admin(client, django_user_model):
    client.force_login(user_in(django_user_model, "hr-staff", roles.HR, is_staff=True))

    response = client.get(reverse("home"))

    assert links(response) == {KIOSK, CHECK_IN, MY_ATTENDANCE, REPORTS, ADMIN}


def test_the_header_shows_the_same_choices(client, django_user_model):
    client.force_login(user_in(django_user_model, "auditor", roles.AUDITOR))

    header = client.get(reverse("home")).content.decode().split("<main")[0]

    assert f'href="{REPORTS}"' in header and f'href="{ADMIN}"' not in header
    assert f'action="{reverse("logout")}"' in header  # logging out is a POST, never a link


def test_the_home_page_in_a_real_browser(live_server, browser_allowed, django_user_model, tmp_path):
    user_in(django_user_model, "hr", roles.HR, is_staff=True, first_name="Hana", last_name="Reyes")
    camera = write_y4m(tmp_path / "grey.y4m", None, frames=2)

    with camera_browser(camera, live_server.url) as page:
        page.goto(LOGIN)
        page.fill("#id_username", "hr")
        page.fill("#id_password", "a-wrong-password")
        page.click("main button[type=submit]")
        refusal = page.inner_text("main .errorlist")
        keep_screenshot(page, tmp_path, "login-refused")
        page.fill("#id_password", "a-long-password-1")
        page.click("main button[type=submit]")
        page.wait_for_url(live_server.url + "/")
        titles = page.locator(".links strong").all_inner_texts()
        keep_screenshot(page, tmp_path, "home-hr")

    assert "enter a correct username and password" in refusal
    assert titles == ["Kiosk", "Check in", "My attendance", "Attendance reports", "Admin"]
    assert (SCREENSHOTS_DIR / "home-hr.png").exists()
