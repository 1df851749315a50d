"""An independent SAS host drives egm-sim: long polls through sas_comm_py (a SAS host library
from PyPI, https://pypi.org/project/sas-comm-py/), which checks every answer's CRC with its own
CRC-16/KERMIT. Prints one JSON object with what it read; the Rust test compares it with the
simulator's own state.

sas_comm_py 0.1.0 calls a `get_serial_number` method it never defines, so the class is
subclassed to provide one; everything else is the library as published. It has no general
poll, so exceptions are read with raw pyserial writes on the library's own port: the sync
poll 80 (an implied ACK, SAS 6.02 section 3.1) then the general poll.

usage: sas_peer.py PTY ADDRESS
"""

import json
import sys

import sas_comm_py


class Peer(sas_comm_py.SlotMachine):
    def get_serial_number(self):
        return None


def bcd(data):
    """sas_comm_py hands back data as hex strings; BCD reads as its decimal digits."""
    return int("".join(data))


def ascii_text(data):
    return bytes(int(b, 16) for b in data).decode("ascii")


def main():
    port, address = sys.argv[1], int(sys.argv[2])
    machine = Peer(port, address=address)
    result = {}

    info = machine.write_type_R(0x1F, length_to_read=20)
    assert info, "no answer to 1F"
    result["game_id"] = ascii_text(info.data[0:2])
    result["additional_id"] = ascii_text(info.data[2:5])
    result["denomination_code"] = int(info.data[5], 16)
    result["paytable"] = ascii_text(info.data[10:16])
    result["base_percent"] = ascii_text(info.data[16:20])

    for name, command in [("coin_in", 0x11), ("coin_out", 0x12), ("games_played", 0x15), ("credits", 0x1A)]:
        answer = machine.write_type_R(command, length_to_read=4)
        assert answer, f"no answer to {command:02X}"
        result[name] = bcd(answer.data)

    meters = machine.write_type_R(0x0F, length_to_read=24)
    assert meters, "no answer to 0F"
    result["meters_0f"] = [bcd(meters.data[i : i + 4]) for i in range(0, 24, 4)]

    # 2F: selected meters for game 0000, coin in (00) and games played (05).
    selected = machine.write_type_M(0x2F, optional_data=[0x00, 0x05], add_length_binary=True)
    assert selected, "no answer to 2F"
    data = selected.data  # game number (2), then code + 4 BCD per meter
    result["meters_2f"] = {data[2]: bcd(data[3:7]), data[7]: bcd(data[8:12])}

    shutdown = machine.write(0x01, poll_type="S", response_type="ack_nack")
    result["shutdown_ack"] = shutdown.ack_nack == bytes([address])
    startup = machine.write(0x02, poll_type="S", response_type="ack_nack")
    result["startup_ack"] = startup.ack_nack == bytes([address])

    exceptions = []
    for _ in range(40):
        machine.port.write(bytes([0x80, 0x80 | address]))
        code = machine.port.read(1)
        assert code, "no answer to the general poll"
        if code[0] == 0:
            break
        exceptions.append(code[0])
    result["exceptions"] = exceptions

    print(json.dumps(result))


if __name__ == "__main__":
    main()
