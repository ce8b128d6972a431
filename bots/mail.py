"""The email helper: send an HTML message through an Airflow SMTP connection.

Server, port, login, password and sender live in the Airflow connection (``AIRFLOW_CONN_SMTP_DEFAULT`` or the
UI); recipients in the environment variable / Airflow Variable named by ``to_variable``. Nothing about who sends
to whom is in code.
"""

from __future__ import annotations

import os


class MailConfigError(RuntimeError):
    """No recipients configured; the message says where to set them."""


def recipients(to_variable: str = "LOANPIPE_MAIL_TO") -> list[str]:
    """Recipients from $<to_variable>, else the Airflow Variable of that name (comma-separated)."""
    raw = os.environ.get(to_variable)
    if not raw:
        try:
            from airflow.sdk import Variable

            raw = Variable.get(to_variable, default=None)
        except Exception:  # noqa: BLE001 - outside a task there is no Variable backend
            raw = None
    if not raw:
        raise MailConfigError(f"no recipients: set the environment variable or Airflow Variable {to_variable} "
                              "(comma-separated addresses)")
    return [a.strip() for a in raw.split(",") if a.strip()]


def send_mail(subject: str, html: str, files: list[str] | None = None, conn_id: str = "smtp_default",
              to_variable: str = "LOANPIPE_MAIL_TO") -> None:
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    with SmtpHook(smtp_conn_id=conn_id) as hook:
        hook.send_email_smtp(to=recipients(to_variable), subject=subject, html_content=html, files=files or [])
