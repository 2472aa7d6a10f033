"""Data-subject rights (Art. 28–29; GDPR arts. 12, 15–21).

    requests.py  a request routed to the competent controller, its dated acknowledgment, due one
                 calendar month later (extended once by two months), answered
    export.py    access and portability: the person's data as one JSON document
"""
from hub.lifecycle.rights.export import export_for_request, export_subject
from hub.lifecycle.rights.requests import (
    CALENDAR, CONCERNING, EXPORT_FORMAT, EXPORT_KINDS, KINDS, OUTCOMES, RightsRequest, acknowledgment, add_months, answer,
    check_identifiers, count_overdue, due_date, extend, get_request, list_requests, may_bring_requests, normalise_passport,
    record_listing, require_controller, submit_request,
)

__all__ = [
    "CALENDAR", "KINDS", "CONCERNING", "EXPORT_KINDS", "OUTCOMES", "EXPORT_FORMAT", "RightsRequest",
    "submit_request", "acknowledgment", "get_request", "list_requests", "count_overdue", "answer", "extend", "export_subject",
    "export_for_request", "record_listing", "check_identifiers", "may_bring_requests", "due_date",
    "add_months", "normalise_passport", "require_controller",
]
