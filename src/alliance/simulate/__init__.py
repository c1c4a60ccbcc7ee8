"""Simulated courses of care: personas, simulated clients, chatbots under test and the runner.

Offline by default (scripted clients); a language-model client and endpoint bots need a configured endpoint.
"""

from __future__ import annotations

from alliance.simulate.bots import BASELINES, AdviceBot, CallableBot, ElizaBot, EndpointBot, SootheBot, load_bot
from alliance.simulate.clients import ClientTurn, ModelClient, ScriptedClient
from alliance.simulate.personas import Persona, PersonaError, load_personas
from alliance.simulate.runner import Simulation, bot_profiles, run_simulation, simulate

__all__ = ["BASELINES", "AdviceBot", "CallableBot", "ClientTurn", "ElizaBot", "EndpointBot", "ModelClient",
           "Persona", "PersonaError", "ScriptedClient", "Simulation", "SootheBot", "bot_profiles", "load_bot",
           "load_personas", "run_simulation", "simulate"]
