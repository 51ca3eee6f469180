"""Alerts: rules over what needs attention, sent to webhooks, Slack and e-mail (``--alerts FILE``)."""

from stemtrace.server.alerts.config import AlertsConfig, AlertsConfigError, load
from stemtrace.server.alerts.engine import Alerter

__all__ = ["Alerter", "AlertsConfig", "AlertsConfigError", "load"]
