"""The pages people use: home, verification (kiosk and personal), attendance reports."""

from django.urls import path

from identity import pages, reports

urlpatterns = [
    path("", pages.home, name="home"),
    path("kiosk/", pages.kiosk, name="kiosk"),
    path("check-in/", pages.personal_check_in, name="check-in"),
    path("attendance/", reports.attendance_report, name="attendance-report"),
    path("attendance/report.csv", reports.attendance_csv, name="attendance-csv"),
    path("attendance/chart.png", reports.attendance_chart, name="attendance-chart"),
    path("attendance/me/", reports.my_attendance, name="my-attendance"),
]
