"""Monitoring: prediction events and labels cut into windows, compared with a reference,
watched by detectors and policies that raise alerts.
"""
