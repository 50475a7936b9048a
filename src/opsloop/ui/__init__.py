"""The web dashboard (layer 5): experiments, models and deployments as server-rendered pages.

The pages read through the services' Python API (the tracking store, the model registry and
the deployments the server keeps on ``app.state``), never the database directly.
"""
