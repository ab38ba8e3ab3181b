"""Test charge points for the chargeledger gateway, built on the PyPI `ocpp`
package (mobilityhouse), which validates every message in both directions
against the official OCA schemas.

usage: chargepoint.py SCENARIO BASE_URL CHARGER_ID PASSWORD [ARGS...]

Each scenario prints one line `RESULT <json>` on success and exits 0; any
assertion or protocol error exits non-zero with a traceback.
"""
import asyncio
import base64
import json
import os
import ssl
import sys
from datetime import datetime, timedelta, timezone

import websockets
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as CP16, call as call16, call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as CP201, call as call201, call_result as result201
from ocpp.v201.enums import Action as Action201


def now(offset_s=0):
    t = datetime.now(timezone.utc) + timedelta(seconds=offset_s)
    return t.isoformat().replace("+00:00", "Z")


def connect(base, cid, password, subprotocol):
    headers = {}
    if password:
        token = base64.b64encode(f"{cid}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    tls = None
    if base.startswith("wss://"):
        # Security profile 2: trust only the CA the test names.
        tls = ssl.create_default_context(cafile=os.environ["CHARGELEDGER_TEST_CA"])
    return websockets.connect(f"{base}/{cid}", subprotocols=[subprotocol], additional_headers=headers,
                              proxy=None, max_size=2**22, open_timeout=10, ssl=tls)


def done(result):
    print("RESULT " + json.dumps(result, default=str), flush=True)


class Charger16(CP16):
    def __init__(self, *a, expect=0, **kw):
        super().__init__(*a, **kw)
        self.received = []
        self.expect = expect
        self.finished = asyncio.Event()
        self.tx = None

    def note(self, action):
        self.received.append(action)
        if len(self.received) >= self.expect:
            self.finished.set()

    @on(Action16.remote_start_transaction)
    async def remote_start(self, id_tag, connector_id=None, **kw):
        return result16.RemoteStartTransaction(status="Accepted")

    @after(Action16.remote_start_transaction)
    async def after_remote_start(self, id_tag, connector_id=None, **kw):
        r = await self.call(call16.StartTransaction(connector_id=connector_id or 1, id_tag=id_tag, meter_start=1000, timestamp=now()))
        self.tx = r.transaction_id
        await self.call(call16.MeterValues(connector_id=connector_id or 1, transaction_id=self.tx, meter_value=[
            {"timestamp": now(), "sampled_value": [{"value": "2500", "unit": "Wh"}, {"value": "7.4", "measurand": "Power.Active.Import", "unit": "kW"}]}]))
        self.note("RemoteStartTransaction")

    @on(Action16.remote_stop_transaction)
    async def remote_stop(self, transaction_id, **kw):
        return result16.RemoteStopTransaction(status="Accepted" if transaction_id == self.tx else "Rejected")

    @after(Action16.remote_stop_transaction)
    async def after_remote_stop(self, transaction_id, **kw):
        await self.call(call16.StopTransaction(meter_stop=4000, timestamp=now(), transaction_id=transaction_id, reason="Remote"))
        self.note("RemoteStopTransaction")

    @on(Action16.set_charging_profile)
    async def set_profile(self, connector_id, cs_charging_profiles, **kw):
        self.profile = cs_charging_profiles
        return result16.SetChargingProfile(status="Accepted")

    @after(Action16.set_charging_profile)
    async def after_set_profile(self, **kw):
        self.note("SetChargingProfile")

    @on(Action16.reset)
    async def reset(self, type, **kw):
        return result16.Reset(status="Accepted")

    @after(Action16.reset)
    async def after_reset(self, **kw):
        self.note("Reset")

    @on(Action16.unlock_connector)
    async def unlock(self, connector_id, **kw):
        if getattr(self, "slow", False):
            await asyncio.sleep(60)  # never answers in time
        self.note("UnlockConnector")
        return result16.UnlockConnector(status="Unlocked")

    @on(Action16.change_availability)
    async def change_availability(self, connector_id, type, **kw):
        self.note("ChangeAvailability")
        return result16.ChangeAvailability(status="Accepted")

    @on(Action16.trigger_message)
    async def trigger(self, requested_message, **kw):
        self.note("TriggerMessage")
        return result16.TriggerMessage(status="Accepted")

    @on(Action16.get_configuration)
    async def get_configuration(self, key=None, **kw):
        self.note("GetConfiguration")
        return result16.GetConfiguration(configuration_key=[{"key": "HeartbeatInterval", "readonly": False, "value": "300"}],
                                         unknown_key=[k for k in (key or []) if k != "HeartbeatInterval"])

    @on(Action16.change_configuration)
    async def change_configuration(self, key, value, **kw):
        self.note("ChangeConfiguration")
        return result16.ChangeConfiguration(status="Accepted")

    @on(Action16.clear_charging_profile)
    async def clear_profile(self, **kw):
        self.note("ClearChargingProfile")
        return result16.ClearChargingProfile(status="Accepted")

    @on(Action16.get_composite_schedule)
    async def composite(self, connector_id, duration, charging_rate_unit=None, **kw):
        self.note("GetCompositeSchedule")
        return result16.GetCompositeSchedule(status="Accepted", connector_id=connector_id, schedule_start=now(),
                                             charging_schedule={"charging_rate_unit": charging_rate_unit or "W", "duration": duration,
                                                                "charging_schedule_period": [{"start_period": 0, "limit": 7400}]})

    @on(Action16.clear_cache)
    async def clear_cache(self, **kw):
        self.note("ClearCache")
        return result16.ClearCache(status="Accepted")

    @on(Action16.data_transfer)
    async def data_transfer(self, vendor_id, **kw):
        self.note("DataTransfer")
        return result16.DataTransfer(status="Accepted", data="pong")


async def boot16(cp):
    b = await cp.call(call16.BootNotification(charge_point_vendor="PyVendor", charge_point_model="PyModel",
                                             charge_point_serial_number="SN-16", firmware_version="1.2.3"))
    assert b.status == "Accepted", b
    return b


async def flow16(base, cid, password):
    out = {}
    async with connect(base, cid, password, "ocpp1.6") as ws:
        assert ws.subprotocol == "ocpp1.6"
        cp = Charger16(cid, ws, response_timeout=10)
        reader = asyncio.create_task(cp.start())
        b = await boot16(cp)
        out["interval"] = b.interval
        await cp.call(call16.Heartbeat())
        await cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Preparing", timestamp=now()))
        a = await cp.call(call16.Authorize(id_tag="DRIVER-1"))
        out["authorize"] = a.id_tag_info["status"]
        started_at = now()
        s = await cp.call(call16.StartTransaction(connector_id=1, id_tag="DRIVER-1", meter_start=10000, timestamp=started_at))
        out["transactionId"] = s.transaction_id
        # The same transaction again under a new message id: the same answer.
        again = await cp.call(call16.StartTransaction(connector_id=1, id_tag="DRIVER-1", meter_start=10000, timestamp=started_at))
        out["repeatedStartTransactionId"] = again.transaction_id
        await cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Charging", timestamp=now()))
        for wh in (11000, 12500, 12000):  # the last one goes backwards: an anomaly
            await cp.call(call16.MeterValues(connector_id=1, transaction_id=s.transaction_id, meter_value=[
                {"timestamp": now(), "sampled_value": [
                    {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                    {"value": "11000", "measurand": "Power.Active.Import", "unit": "W"},
                    {"value": "64", "measurand": "SoC", "unit": "Percent"}]}]))
        stop = call16.StopTransaction(meter_stop=13000, timestamp=now(), transaction_id=s.transaction_id, reason="Local", id_tag="DRIVER-1")
        first = await cp.call(stop, unique_id="stop-message-1")
        out["stop"] = first.id_tag_info["status"]
        await cp.call(call16.DataTransfer(vendor_id="com.example", message_id="hello", data="x"))
        await cp.call(call16.DiagnosticsStatusNotification(status="Idle"))
        await cp.call(call16.FirmwareStatusNotification(status="Installed"))
        reader.cancel()
    # Reconnect and repeat the stop with the same message id: same answer, no second effect.
    async with connect(base, cid, password, "ocpp1.6") as ws:
        cp = Charger16(cid, ws, response_timeout=10)
        reader = asyncio.create_task(cp.start())
        repeat = await cp.call(stop, unique_id="stop-message-1")
        out["repeatedStop"] = repeat.id_tag_info["status"]
        reader.cancel()
    done(out)


async def serve16(base, cid, password, expect, slow=""):
    async with connect(base, cid, password, "ocpp1.6") as ws:
        cp = Charger16(cid, ws, response_timeout=10, expect=int(expect))
        cp.slow = slow == "slow"
        reader = asyncio.create_task(cp.start())
        await boot16(cp)
        await cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Available", timestamp=now()))
        print("READY", flush=True)
        await asyncio.wait_for(cp.finished.wait(), 30)
        await asyncio.sleep(0.3)  # let the last answer go out
        reader.cancel()
        done({"received": cp.received, "transactionId": cp.tx, "profile": getattr(cp, "profile", None)})


async def raw_exchange(ws, frame):
    await ws.send(frame)
    return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def bad16(base, cid, password):
    out = {}
    async with connect(base, cid, password, "ocpp1.6") as ws:
        out["malformed"] = await raw_exchange(ws, '[2,"b1","Heartbeat",{')
        out["unknownAction"] = await raw_exchange(ws, '[2,"b2","SelfDestruct",{}]')
        out["csmsAction"] = await raw_exchange(ws, '[2,"b3","RemoteStartTransaction",{"idTag":"x"}]')
        out["missingField"] = await raw_exchange(ws, '[2,"b4","StartTransaction",{"connectorId":1,"idTag":"T","timestamp":"2026-11-21T10:00:00Z"}]')
        out["wrongType"] = await raw_exchange(ws, '[2,"b5","StartTransaction",{"connectorId":"one","idTag":"T","meterStart":0,"timestamp":"2026-11-21T10:00:00Z"}]')
        out["tooLong"] = await raw_exchange(ws, '[2,"b6","Authorize",{"idTag":"%s"}]' % ("X" * 21))
        out["extraField"] = await raw_exchange(ws, '[2,"b7","Heartbeat",{"bogus":1}]')
        out["notArray"] = await raw_exchange(ws, '{"hello":"world"}')
        out["badType"] = await raw_exchange(ws, '[7,"b8",{}]')
        out["stillAlive"] = await raw_exchange(ws, '[2,"b9","Heartbeat",{}]')
    done(out)


class Charger201(CP201):
    def __init__(self, *a, expect=0, **kw):
        super().__init__(*a, **kw)
        self.received = []
        self.expect = expect
        self.finished = asyncio.Event()
        self.tx = None

    def note(self, action):
        self.received.append(action)
        if len(self.received) >= self.expect:
            self.finished.set()

    @on(Action201.request_start_transaction)
    async def request_start(self, id_token, remote_start_id, evse_id=None, **kw):
        self.remote_start_id = remote_start_id
        return result201.RequestStartTransaction(status="Accepted")

    @after(Action201.request_start_transaction)
    async def after_request_start(self, id_token, remote_start_id, evse_id=None, **kw):
        self.tx = "tx-remote-1"
        await self.call(call201.TransactionEvent(
            event_type="Started", timestamp=now(), trigger_reason="RemoteStart", seq_no=0,
            transaction_info={"transaction_id": self.tx, "remote_start_id": remote_start_id},
            id_token=id_token, evse={"id": evse_id or 1, "connector_id": 1},
            meter_value=[{"timestamp": now(), "sampled_value": [{"value": 500.0}]}]))
        self.note("RequestStartTransaction")

    @on(Action201.request_stop_transaction)
    async def request_stop(self, transaction_id, **kw):
        return result201.RequestStopTransaction(status="Accepted" if transaction_id == self.tx else "Rejected")

    @after(Action201.request_stop_transaction)
    async def after_request_stop(self, transaction_id, **kw):
        await self.call(call201.TransactionEvent(
            event_type="Ended", timestamp=now(), trigger_reason="RemoteStop", seq_no=1,
            transaction_info={"transaction_id": transaction_id, "stopped_reason": "Remote"},
            meter_value=[{"timestamp": now(), "sampled_value": [{"value": 2.5, "unit_of_measure": {"unit": "kWh"}}]}]))
        self.note("RequestStopTransaction")

    @on(Action201.reset)
    async def reset(self, type, **kw):
        self.note("Reset")
        return result201.Reset(status="Accepted")

    @on(Action201.change_availability)
    async def change_availability(self, operational_status, **kw):
        self.note("ChangeAvailability")
        return result201.ChangeAvailability(status="Accepted")

    @on(Action201.unlock_connector)
    async def unlock(self, evse_id, connector_id, **kw):
        self.note("UnlockConnector")
        return result201.UnlockConnector(status="Unlocked")

    @on(Action201.trigger_message)
    async def trigger(self, requested_message, **kw):
        self.note("TriggerMessage")
        return result201.TriggerMessage(status="Accepted")

    @on(Action201.get_variables)
    async def get_variables(self, get_variable_data, **kw):
        self.note("GetVariables")
        return result201.GetVariables(get_variable_result=[
            {"attribute_status": "Accepted", "attribute_value": "300", "component": d["component"], "variable": d["variable"]}
            for d in get_variable_data])

    @on(Action201.set_variables)
    async def set_variables(self, set_variable_data, **kw):
        self.note("SetVariables")
        return result201.SetVariables(set_variable_result=[
            {"attribute_status": "Accepted", "component": d["component"], "variable": d["variable"]} for d in set_variable_data])

    @on(Action201.clear_charging_profile)
    async def clear_profile(self, **kw):
        self.note("ClearChargingProfile")
        return result201.ClearChargingProfile(status="Accepted")

    @on(Action201.get_composite_schedule)
    async def composite(self, duration, evse_id, **kw):
        self.note("GetCompositeSchedule")
        return result201.GetCompositeSchedule(status="Accepted")

    @on(Action201.clear_cache)
    async def clear_cache(self, **kw):
        self.note("ClearCache")
        return result201.ClearCache(status="Accepted")

    @on(Action201.data_transfer)
    async def data_transfer(self, vendor_id, **kw):
        self.note("DataTransfer")
        return result201.DataTransfer(status="Accepted")

    @on(Action201.set_charging_profile)
    async def set_profile(self, evse_id, charging_profile, **kw):
        self.profile = charging_profile
        return result201.SetChargingProfile(status="Accepted")

    @after(Action201.set_charging_profile)
    async def after_set_profile(self, **kw):
        self.note("SetChargingProfile")


async def boot201(cp):
    b = await cp.call(call201.BootNotification(charging_station={"model": "Py201", "vendor_name": "PyVendor", "firmware_version": "2.0"},
                                              reason="PowerUp"))
    assert b.status == "Accepted", b
    return b


async def flow201(base, cid, password):
    out = {}
    async with connect(base, cid, password, "ocpp2.0.1") as ws:
        assert ws.subprotocol == "ocpp2.0.1"
        cp = Charger201(cid, ws, response_timeout=10)
        reader = asyncio.create_task(cp.start())
        b = await boot201(cp)
        out["interval"] = b.interval
        await cp.call(call201.Heartbeat())
        await cp.call(call201.StatusNotification(timestamp=now(), connector_status="Occupied", evse_id=1, connector_id=1))
        a = await cp.call(call201.Authorize(id_token={"id_token": "TOKEN-201", "type": "ISO14443"}))
        out["authorize"] = a.id_token_info["status"]
        tx = {"transaction_id": "tx-201-a"}
        token = {"id_token": "TOKEN-201", "type": "ISO14443"}
        await cp.call(call201.TransactionEvent(event_type="Started", timestamp=now(-60), trigger_reason="Authorized", seq_no=0,
                                               transaction_info=tx, id_token=token, evse={"id": 1, "connector_id": 1},
                                               meter_value=[{"timestamp": now(-60), "sampled_value": [{"value": 1000}]}]))
        await cp.call(call201.TransactionEvent(event_type="Updated", timestamp=now(-30), trigger_reason="MeterValuePeriodic", seq_no=1,
                                               transaction_info=tx, meter_value=[{"timestamp": now(-30), "sampled_value": [
                                                   {"value": 1.8, "unit_of_measure": {"unit": "kWh"}},
                                                   {"value": 7.2, "measurand": "Power.Active.Import", "unit_of_measure": {"unit": "kW"}}]}]))
        # seqNo 2 and 3 never arrive: a gap, recorded. Queued offline, with an old timestamp.
        await cp.call(call201.TransactionEvent(event_type="Updated", timestamp=now(-10), trigger_reason="MeterValuePeriodic", seq_no=4,
                                               offline=True, transaction_info=tx, meter_value=[{"timestamp": now(-10), "sampled_value": [{"value": 2600}]}]))
        await cp.call(call201.MeterValues(evse_id=1, meter_value=[{"timestamp": now(), "sampled_value": [{"value": 2700}]}]))
        await cp.call(call201.TransactionEvent(event_type="Ended", timestamp=now(), trigger_reason="EVCommunicationLost", seq_no=5,
                                               transaction_info={"transaction_id": "tx-201-a", "stopped_reason": "EVDisconnected"},
                                               meter_value=[{"timestamp": now(), "sampled_value": [{"value": 3000}]}]))
        await cp.call(call201.NotifyReport(request_id=1, generated_at=now(), seq_no=0, tbc=False))
        await cp.call(call201.NotifyEvent(generated_at=now(), seq_no=0, event_data=[{
            "event_id": 1, "timestamp": now(), "trigger": "Alerting", "actual_value": "true", "event_notification_type": "HardWiredNotification",
            "component": {"name": "ChargingStation"}, "variable": {"name": "Problem"}}]))
        await cp.call(call201.FirmwareStatusNotification(status="Installed"))
        await cp.call(call201.SecurityEventNotification(type="StartupOfTheDevice", timestamp=now()))
        reader.cancel()
    done(out)


async def serve201(base, cid, password, expect):
    async with connect(base, cid, password, "ocpp2.0.1") as ws:
        cp = Charger201(cid, ws, response_timeout=10, expect=int(expect))
        reader = asyncio.create_task(cp.start())
        await boot201(cp)
        print("READY", flush=True)
        await asyncio.wait_for(cp.finished.wait(), 30)
        await asyncio.sleep(0.3)  # let the last answer go out
        reader.cancel()
        done({"received": cp.received, "transactionId": cp.tx, "profile": getattr(cp, "profile", None)})


async def try_connect(base, cid, password, subprotocol):
    try:
        async with connect(base, cid, password, subprotocol) as ws:
            done({"status": "open", "subprotocol": ws.subprotocol})
    except websockets.exceptions.InvalidStatus as e:
        done({"status": e.response.status_code, "body": e.response.body.decode(errors="replace")})


async def big_frame(base, cid, password, size):
    async with connect(base, cid, password, "ocpp1.6") as ws:
        await ws.send('[2,"big","DataTransfer",{"vendorId":"x","data":"%s"}]' % ("A" * int(size)))
        try:
            await asyncio.wait_for(ws.recv(), 10)
            done({"closed": False})
        except websockets.exceptions.ConnectionClosed as e:
            done({"closed": True, "code": e.rcvd.code if e.rcvd else None, "reason": e.rcvd.reason if e.rcvd else None})


async def hold(base, cid, password, seconds):
    async with connect(base, cid, password, "ocpp1.6") as ws:
        cp = Charger16(cid, ws, response_timeout=10)
        reader = asyncio.create_task(cp.start())
        await boot16(cp)
        print("READY", flush=True)
        try:
            await asyncio.wait_for(ws.wait_closed(), float(seconds))
            done({"closedBy": "server", "code": ws.close_code, "reason": ws.close_reason})
        except asyncio.TimeoutError:
            done({"closedBy": "nobody"})
        reader.cancel()


class Session16(CP16):
    """A 1.6 charge point for charge sessions: MODE normal, reject, budget or idle."""

    def __init__(self, *a, mode="normal", meter_stop=0, **kw):
        super().__init__(*a, **kw)
        self.mode, self.meter_stop = mode, int(meter_stop)
        self.done = asyncio.Event()
        self.tx, self.tag, self.seen = None, None, []

    @on(Action16.remote_start_transaction)
    async def remote_start(self, id_tag, connector_id=None, **kw):
        self.seen.append("RemoteStartTransaction")
        self.tag = id_tag
        if self.mode == "reject":
            self.done.set()
            return result16.RemoteStartTransaction(status="Rejected")
        return result16.RemoteStartTransaction(status="Accepted")

    @after(Action16.remote_start_transaction)
    async def after_start(self, id_tag, connector_id=None, **kw):
        if self.mode in ("reject", "idle"):
            return
        r = await self.call(call16.StartTransaction(connector_id=connector_id or 1, id_tag=id_tag, meter_start=1000, timestamp=now()))
        self.tx = r.transaction_id
        await self.call(call16.StatusNotification(connector_id=connector_id or 1, error_code="NoError", status="Charging", timestamp=now()))
        register = 1000 + (40_000 if self.mode == "budget" else 4_000)
        await self.call(call16.MeterValues(connector_id=connector_id or 1, transaction_id=self.tx, meter_value=[
            {"timestamp": now(), "sampled_value": [{"value": str(register), "unit": "Wh"}]}]))
        print("CHARGING", flush=True)

    @on(Action16.remote_stop_transaction)
    async def remote_stop(self, transaction_id, **kw):
        self.seen.append("RemoteStopTransaction")
        return result16.RemoteStopTransaction(status="Accepted" if transaction_id == self.tx else "Rejected")

    @after(Action16.remote_stop_transaction)
    async def after_stop(self, transaction_id, **kw):
        await self.call(call16.StopTransaction(meter_stop=self.meter_stop, timestamp=now(), transaction_id=transaction_id, reason="Remote"))
        await self.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Available", timestamp=now()))
        self.done.set()


async def session16(base, cid, password, mode, meter_stop="0", seconds="30"):
    async with connect(base, cid, password, "ocpp1.6") as ws:
        cp = Session16(cid, ws, response_timeout=10, mode=mode, meter_stop=meter_stop)
        reader = asyncio.create_task(cp.start())
        await boot16(cp)
        await cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Available", timestamp=now()))
        print("READY", flush=True)
        try:
            await asyncio.wait_for(cp.done.wait(), float(seconds))
        except asyncio.TimeoutError:
            pass
        await asyncio.sleep(0.3)
        reader.cancel()
        done({"seen": cp.seen, "idTag": cp.tag, "transactionId": cp.tx})


class Session201(CP201):
    def __init__(self, *a, meter_stop=0, **kw):
        super().__init__(*a, **kw)
        self.meter_stop = int(meter_stop)
        self.done = asyncio.Event()
        self.tx, self.seen = None, []

    @on(Action201.request_start_transaction)
    async def request_start(self, id_token, remote_start_id, evse_id=None, **kw):
        self.seen.append("RequestStartTransaction")
        return result201.RequestStartTransaction(status="Accepted")

    @after(Action201.request_start_transaction)
    async def after_start(self, id_token, remote_start_id, evse_id=None, **kw):
        self.tx = "tx-session-201"
        await self.call(call201.TransactionEvent(
            event_type="Started", timestamp=now(), trigger_reason="RemoteStart", seq_no=0,
            transaction_info={"transaction_id": self.tx, "remote_start_id": remote_start_id},
            id_token=id_token, evse={"id": evse_id or 1, "connector_id": 1},
            meter_value=[{"timestamp": now(), "sampled_value": [{"value": 500}]}]))
        await self.call(call201.TransactionEvent(
            event_type="Updated", timestamp=now(), trigger_reason="MeterValuePeriodic", seq_no=1,
            transaction_info={"transaction_id": self.tx}, meter_value=[{"timestamp": now(), "sampled_value": [{"value": 2500}]}]))
        print("CHARGING", flush=True)

    @on(Action201.request_stop_transaction)
    async def request_stop(self, transaction_id, **kw):
        self.seen.append("RequestStopTransaction")
        return result201.RequestStopTransaction(status="Accepted" if transaction_id == self.tx else "Rejected")

    @after(Action201.request_stop_transaction)
    async def after_stop(self, transaction_id, **kw):
        await self.call(call201.TransactionEvent(
            event_type="Ended", timestamp=now(), trigger_reason="RemoteStop", seq_no=2,
            transaction_info={"transaction_id": transaction_id, "stopped_reason": "Remote"},
            meter_value=[{"timestamp": now(), "sampled_value": [{"value": self.meter_stop}]}]))
        self.done.set()


async def session201(base, cid, password, meter_stop="0", seconds="30"):
    async with connect(base, cid, password, "ocpp2.0.1") as ws:
        cp = Session201(cid, ws, response_timeout=10, meter_stop=meter_stop)
        reader = asyncio.create_task(cp.start())
        await boot201(cp)
        await cp.call(call201.StatusNotification(timestamp=now(), connector_status="Available", evse_id=1, connector_id=1))
        print("READY", flush=True)
        await asyncio.wait_for(cp.done.wait(), float(seconds))
        await asyncio.sleep(0.3)
        reader.cancel()
        done({"seen": cp.seen, "transactionId": cp.tx})


class Infra16(CP16):
    """A 1.6 charge point for the charging-infrastructure tests. MODE ok: accepts
    TriggerMessage, then sends the Heartbeat it asked for; reject: refuses it;
    silent: never answers it. On DataTransfer vendorId "chargeledger.test", messageId
    "status" with data "<connector>:<status>[:<errorCode>]" it reports that status;
    messageId "quit" ends the scenario (and the connection)."""

    def __init__(self, *a, mode="ok", **kw):
        super().__init__(*a, **kw)
        self.mode = mode
        self.triggers, self.heartbeats, self.statuses = 0, 0, []
        self.quit = asyncio.Event()

    async def route_message(self, raw):
        message = json.loads(raw)
        if self.mode == "silent" and message[0] == 2 and message[2] == "TriggerMessage":
            self.triggers += 1  # heard, never answered
            return
        await super().route_message(raw)

    @on(Action16.trigger_message)
    async def trigger(self, requested_message, connector_id=None, **kw):
        self.triggers += 1
        return result16.TriggerMessage(status="Rejected" if self.mode == "reject" else "Accepted")

    @after(Action16.trigger_message)
    async def after_trigger(self, requested_message, connector_id=None, **kw):
        if self.mode == "ok" and requested_message == "Heartbeat":
            await self.call(call16.Heartbeat())
            self.heartbeats += 1

    @on(Action16.data_transfer)
    async def data_transfer(self, vendor_id, message_id=None, data=None, **kw):
        known = vendor_id == "chargeledger.test" and message_id in ("status", "quit")
        return result16.DataTransfer(status="Accepted" if known else "UnknownVendorId")

    @after(Action16.data_transfer)
    async def after_data_transfer(self, vendor_id, message_id=None, data=None, **kw):
        if vendor_id != "chargeledger.test":
            return
        if message_id == "status":
            connector, status, *error = data.split(":")
            await self.call(call16.StatusNotification(connector_id=int(connector), error_code=error[0] if error else "NoError",
                                                      status=status, timestamp=now()))
            self.statuses.append(data)
        elif message_id == "quit":
            self.quit.set()


async def infra16(base, cid, password, mode="ok", seconds="90"):
    async with connect(base, cid, password, "ocpp1.6") as ws:
        cp = Infra16(cid, ws, response_timeout=10, mode=mode)
        reader = asyncio.create_task(cp.start())
        await boot16(cp)
        for connector in (1, 2):
            await cp.call(call16.StatusNotification(connector_id=connector, error_code="NoError", status="Available", timestamp=now()))
        print("READY", flush=True)
        try:
            await asyncio.wait_for(cp.quit.wait(), float(seconds))
        except asyncio.TimeoutError:
            pass
        await asyncio.sleep(0.3)  # let the last answer go out
        reader.cancel()
    done({"triggers": cp.triggers, "heartbeats": cp.heartbeats, "statuses": cp.statuses})


SCENARIOS = {"session16": session16, "session201": session201, "flow16": flow16, "serve16": serve16, "bad16": bad16, "flow201": flow201, "serve201": serve201,
             "connect": try_connect, "bigframe": big_frame, "hold": hold,
             "infra16": infra16}

if __name__ == "__main__":
    name, *args = sys.argv[1:]
    asyncio.run(SCENARIOS[name](*args))
