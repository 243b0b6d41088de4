"""The home page: what FRID is, and the links each role may follow.

Who sees which link (identity.pages.destinations_for): visitors, a kiosk's screen among them, the
kiosk page and "Log in"; users linked to an employee their own check-in and attendance; HR and
auditors (identity.view_attendanceevent) the reports; staff the admin; who registers kiosks the
kiosk page. The admin's pages say FRID and lead back here. The real browser: test_home_page_browser.py.
"""

from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from identity import roles
from identity.models import Employee

KIOSK = reverse("kiosk")
CHECK_IN = reverse("check-in")
MY_ATTENDANCE = reverse("my-attendance")
REPORTS = reverse("attendance-report")
ADMIN = reverse("admin:index")
LOGIN = reverse("login")


def links(response) -> set[str]:
    """The home page's own links (the cards), not the header's."""
    content = response.content.decode()
    cards = content[content.index('class="links"'):] if 'class="links"' in content else ""
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

    assert links(response) == {CHECK_IN, MY_ATTENDANCE}  # the kiosk page is for the entrance's screen
    assert b"Log out" in response.content


def test_an_auditor_gets_the_reports_and_no_check_in_without_an_employee_record(client, django_user_model):
    client.force_login(user_in(django_user_model, "auditor", roles.AUDITOR))

    response = client.get(reverse("home"))

    assert links(response) == {REPORTS}


def test_hr_staff_get_the_admin_the_reports_and_the_kiosk_page_they_set_up(client, django_user_model):
    client.force_login(user_in(django_user_model, "hr-staff", roles.HR, is_staff=True))

    response = client.get(reverse("home"))

    assert links(response) == {ADMIN, REPORTS, KIOSK}
    assert b"How it works" not in response.content  # that is for visitors


def test_hr_who_are_employees_too_also_get_their_own_check_in(client, django_user_model):
    user = user_in(django_user_model, "hana", roles.HR, is_staff=True)
    Employee.objects.create(employee_number="E7", name="Hana", user=user)
    client.force_login(user)

    response = client.get(reverse("home"))

    assert links(response) == {CHECK_IN, MY_ATTENDANCE, ADMIN, REPORTS, KIOSK}


def test_an_account_with_no_role_is_told_to_ask_hr_to_link_it(client, django_user_model):
    client.force_login(user_in(django_user_model, "newcomer"))

    response = client.get(reverse("home"))

    assert links(response) == set()
    assert b"Your account is not linked to an employee yet" in response.content


def test_the_header_shows_the_same_choices(client, django_user_model):
    client.force_login(user_in(django_user_model, "auditor", roles.AUDITOR))

    header = client.get(reverse("home")).content.decode().split("<main")[0]

    assert f'href="{REPORTS}"' in header
    assert all(f'href="{href}"' not in header for href in (ADMIN, CHECK_IN, MY_ATTENDANCE, KIOSK))
    assert f'action="{reverse("logout")}"' in header  # logging out is a POST, never a link


def test_visitors_read_how_frid_works(client):
    response = client.get(reverse("home"))

    assert b"How it works" in response.content
    assert b"HR records each employee's consent to biometric processing" in response.content


def test_the_admin_says_frid_and_leads_back_to_the_home_page(admin_client):
    page = admin_client.get(ADMIN).content.decode()

    assert '<div id="site-name"><a href="/admin/">FRID administration</a></div>' in page
    assert "<title>Face re-identification | FRID</title>" in page
    assert f'<a href="{reverse("home")}">View site</a>' in page
    assert "Django administration" not in page


def test_account_pages_outside_the_admin_site_say_frid_too(admin_client):
    page = admin_client.get(reverse("password_change")).content.decode()

    assert "FRID administration" in page
    assert "Django administration" not in page and "Django site admin" not in page
