"""The live service: conversations scored as they happen, reviewed, compared and alerted, for teams.

It calls the same scoring core as ``alliance analyze`` (alliance.pipeline.analyze); no measure is computed here.
"""
