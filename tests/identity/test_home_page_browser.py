"""The home page in a real browser at 1280x800, as HR and as an employee: what each is offered,
laid out without overflow. Screenshots in the test's folder (and $FRID_SCREENSHOT_DIR)."""

from identity import roles
from identity.models import Employee
from tests.identity.browser import (  # noqa: F401 (browser_allowed: a fixture)
    browser_allowed,
    camera_browser,
    overflowing_tables,
    write_y4m,
)
from tests.identity.screenshots import screenshot
from tests.identity.test_home_page import LOGIN, user_in

PASSWORD = "a-long-password-1"  # user_in's


def log_in(page, live_server, username: str, password: str = PASSWORD) -> None:
    page.goto(LOGIN)
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("main button[type=submit]")


def test_hr_logs_in_and_is_offered_the_admin_the_reports_and_the_kiosk(
    live_server, browser_allowed, django_user_model, tmp_path
):
    user_in(django_user_model, "hr", roles.HR, is_staff=True, first_name="Hana", last_name="Reyes")
    camera = write_y4m(tmp_path / "grey.y4m", None, frames=2)

    with camera_browser(camera, live_server.url) as page:
        log_in(page, live_server, "hr", "a-wrong-password")
        refusal = page.inner_text("main .errorlist")
        screenshot(page, tmp_path, "login-refused")
        log_in(page, live_server, "hr")
        page.wait_for_url(live_server.url + "/")
        cards = page.locator(".links strong").all_inner_texts()
        header = page.locator(".site-nav a").all_inner_texts()
        overflowing = overflowing_tables(page)
        screenshot(page, tmp_path, "home-hr")

    assert "enter a correct username and password" in refusal
    assert cards == ["Admin", "Attendance reports", "Kiosk"]
    assert header == cards
    assert overflowing == []
    assert (tmp_path / "home-hr.png").exists()


def test_an_employee_is_offered_their_check_in_and_attendance(
    live_server, browser_allowed, django_user_model, tmp_path
):
    user = user_in(django_user_model, "ann", first_name="Ann", last_name="Archer")
    Employee.objects.create(employee_number="E1", name="Ann Archer", user=user)
    camera = write_y4m(tmp_path / "grey.y4m", None, frames=2)

    with camera_browser(camera, live_server.url) as page:
        log_in(page, live_server, "ann")
        page.wait_for_url(live_server.url + "/")
        cards = page.locator(".links strong").all_inner_texts()
        greeting = page.inner_text(".signed-in")
        overflowing = overflowing_tables(page)
        screenshot(page, tmp_path, "home-employee")
        page.goto("/")
        page.context.clear_cookies()
        page.goto("/")
        visitor_cards = page.locator(".links strong").all_inner_texts()
        screenshot(page, tmp_path, "home-visitor")

    assert cards == ["Check in", "My attendance"]
    assert greeting == "Logged in as Ann Archer."
    assert visitor_cards == ["Kiosk", "Log in"]
    assert overflowing == []
