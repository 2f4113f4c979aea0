"""A simulated Asterisk 22.10.1 for tests, the demo and benchmarks.

It speaks AMI as a TCP server and FastAGI as a client and reproduces the event
sequences recorded from a real Asterisk in tests/fixtures/asterisk-22/
(tests/test_sim_vs_transcripts.py checks them).  Time comes from an injected
clock: ``twisted.internet.task.Clock`` runs a whole call deterministically,
the reactor runs it in real time.

    sim = Simulator(reactor, clock=clock, ami_port=0, agi_port=4573)  # or agi_server=<Factory>
    port = sim.start()
    sim.agent("6001", ring=1, talk=30)            # answer / noanswer / busy / manual
    sim.add_member("support", "6001", name="Agent 6001")
    call = sim.call("5551001", "Zoë", dnis="4000", digits="1")   # or keys=["1", "42#"]
    call.hangup(); sim.answer("6001"); sim.agent_hangup("6001")
    sim.shutdown(restart=True)                    # 'core restart now'
    Simulator(..., sounds=SoundLibrary(missing=frozenset({"custom/cc-main-menu"})))  # a box lacking a prompt
    Simulator(..., dialplan_globals={"CTI_ACD_CHECK_SECS": "1", "CTI_ACD_DEAD_SECS": "3"})  # short ACD times
    sim.unregister("6001"); sim.direct_call("6002", seconds=30)  # phones that cannot take a call
    Simulator(..., inbound="lab", acd="lab")      # the lab's dialplan, to replay the recordings
    Simulator(..., featuremap=SHIPPED_FEATUREMAP)  # features.conf: AMI Atxfer makes attended transfers

Modules: scenarios (the API), ami_server/ami_actions/ami_lists/ami_bridge/cli
(AMI; ami_bridge: the bridge AMI Bridge makes), agi_client/agi_session/
agi_commands/agi_media (FastAGI), pbx/tasks/channels/dialplan/
apps/dial/queues/queue_app/originate/outgoing/atxfer/pjsip (the PBX;
atxfer: AMI Atxfer and attended transfers; pjsip: Dial(PJSIP/<exten>) of a
simulated phone), events (the wire format), compare (the transcript
normaliser), testing/loopback (helpers).
"""

from callcenter.sim.atxfer import SHIPPED_FEATUREMAP

from callcenter.sim.agi_session import SoundLibrary
from callcenter.sim.dialplan import AgentPhone
from callcenter.sim.loopback import loopback_connector
from callcenter.sim.originate import OriginateRequest
from callcenter.sim.scenarios import CallHandle, Simulator

__all__ = ["SHIPPED_FEATUREMAP", "AgentPhone", "CallHandle", "OriginateRequest", "Simulator", "SoundLibrary",
           "loopback_connector"]
