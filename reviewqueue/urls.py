from django.urls import path

from reviewqueue import (
    audit_views,
    dashboard_views,
    notification_views,
    people_views,
    report_views,
    run_views,
    views,
)

app_name = "reviewqueue"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("next/", views.get_next, name="get_next"),
    path("move/", views.queue_move, name="queue_move"),
    path("preferences/", views.preferences, name="preferences"),
    path("notifications/", notification_views.notification_list, name="notifications"),
    path("notifications/count/", notification_views.notification_count, name="notifications_count"),
    path(
        "notifications/read/", notification_views.notification_read_all, name="notifications_read"
    ),
    path(
        "notifications/<int:pk>/open/",
        notification_views.notification_open,
        name="notification_open",
    ),
    path("triage/", views.triage, name="triage"),
    path("sign-in-locks/", views.signin_locks, name="signin_locks"),
    path("supervisor/", dashboard_views.dashboard, name="dashboard"),
    path("supervisor/views/", dashboard_views.saved_view_create, name="saved_view_create"),
    path(
        "supervisor/views/<int:pk>/delete/",
        dashboard_views.saved_view_delete,
        name="saved_view_delete",
    ),
    path("supervisor/people/", people_views.people_list, name="people"),
    path("supervisor/people/<int:pk>/pause/", people_views.person_pause, name="person_pause"),
    path("supervisor/people/<int:pk>/resume/", people_views.person_resume, name="person_resume"),
    path(
        "supervisor/reports/completed.csv",
        report_views.completed_export,
        name="report_completed",
    ),
    path("supervisor/reports/queue.csv", report_views.queue_export, name="report_queue"),
    path(
        "supervisor/reports/throughput.csv",
        report_views.throughput_export,
        name="report_throughput",
    ),
    path("audit/", audit_views.audit_report, name="audit"),
    path("audit/export.csv", audit_views.audit_export, name="audit_export"),
    path("runs/", run_views.run_list, name="runs"),
    path("runs/<uuid:flow_run_id>/", run_views.run_detail, name="run"),
    path("runs/<uuid:flow_run_id>/resync/", run_views.run_resync, name="run_resync"),
    path("items/<int:pk>/", views.item_detail, name="item"),
    path("items/<int:pk>/claim/", views.item_claim, name="item_claim"),
    path("items/<int:pk>/release/", views.item_release, name="item_release"),
    path("items/<int:pk>/reassign/", views.item_reassign, name="item_reassign"),
    path("items/<int:pk>/decline/", views.item_decline, name="item_decline"),
    path("items/<int:pk>/postpone/", views.item_postpone, name="item_postpone"),
    path("items/<int:pk>/return/", views.item_return, name="item_return"),
    path("items/<int:pk>/resume/", views.item_resume, name="item_resume"),
    path("items/<int:pk>/resend/", views.item_resend, name="item_resend"),
    path("items/<int:pk>/lease/", views.item_lease, name="item_lease"),
    path("items/<int:pk>/renew/", views.item_renew, name="item_renew"),
    path("items/<int:pk>/draft/", views.item_draft, name="item_draft"),
    path("items/<int:pk>/form/", views.item_form, name="item_form"),
    path("items/<int:pk>/submit/", views.item_submit, name="item_submit"),
    path("items/<int:pk>/notes/", views.item_note, name="item_note"),
    path(
        "forms/<slug:template_id>/<int:number>/<str:state_id>/",
        views.form_partial,
        name="form_partial",
    ),
]
