"""The web dashboard (layer 5): experiments, models, deployments, monitoring, reports and the
review queue as server-rendered pages.

Parts of a page that change while a deployment runs (the deployment's status, monitoring's
newest windows and alerts, the live traffic panel) are fragments the page refetches in
place (:file:`static/fragments.js`, :file:`static/live.js`, both through the one poll loop
of :file:`static/poll.js`).

The pages read through the services' Python API (the tracking store, the model registry,
the deployments, the monitoring and the review queue the server keeps on ``app.state``),
never the database directly. The server
mounts them with :func:`~opsloop.ui.mount.install_dashboard`, handing over its token check
and its store of sessions.

Modules: :mod:`.mount` (the entry), :mod:`.run_pages`, :mod:`.model_pages`,
:mod:`.deployment_pages` and :mod:`.login_pages` (routes), :mod:`.version_actions` and
:mod:`.deployment_actions` (forms that change state, checked by :mod:`.form_posts`),
:mod:`.rollout_state` (a canary's gates and a bandit's arms, on the deployment page's live
status and the results page),
:mod:`.review_pages` (the review queue), :mod:`.live_pages` and :mod:`.traffic_charts` (a
deployment's traffic per variant, refreshed in place), :mod:`.result_pages` (rollouts, A/B
and shadows), :mod:`.monitoring_pages` and :mod:`.monitoring_charts` (a deployment's
monitored windows and alerts), :mod:`.report_pages` (the HTML reports logged in runs,
opened in a sandbox),
:mod:`.session_check` (sessions), :mod:`.session_cookies` (the cookies and their
``Secure`` flag), :mod:`.page_route` (errors as pages),
:mod:`.rendering` (templates and headers), :mod:`.run_table` (keyset pages of runs),
:mod:`.row_pages` (listings and logs read a page at a time), :mod:`.metric_charts` and
:mod:`.series_downsampling` (min/max per bucket).

>>> from fastapi import FastAPI
>>> from opsloop.registry import User
>>> from opsloop.registry.dashboard_sessions import DashboardSessions
>>> from opsloop.store import Database
>>> from opsloop.ui.mount import install_dashboard
>>> app = FastAPI()
>>> install_dashboard(app, lambda request: User("ana", "viewer"),
...                   sessions=DashboardSessions(Database("sqlite://")),
...                   session_caller=lambda request, digest: User("ana", "viewer"))
>>> app.url_path_for("runs_page")
'/runs'
"""
