"""A TURN client for Camus's tests, made of aioice's (Debian's python3-aioice 0.8): aioice allocates
(learning the realm and nonce from the server's 401), refreshes, binds channels and sends ChannelData
itself; this script adds what aioice 0.8 lacks as an application: CreatePermission, Send indications
(aioice's own message class) and hearing Data indications.  It checks every answer's
MESSAGE-INTEGRITY with the long-term key.  Run it with /usr/bin/python3.

Usage: turn_client.py JSON, JSON being {"server": [ip, port], "username": U, "password": P,
  "mode": "allocate" | "relay", "transport": "udp" (default) or "tcp", and for "relay":
  "indication_peer": [ip, port], "channel_peer": [ip, port], "sizes": [n, ...], "release": true
  (default; false: end by closing the socket, without a Refresh).
"allocate": allocates, then releases (Refresh with LIFETIME 0); prints one JSON object.
"relay": prints {"event": "allocated", ...} and waits for a line on stdin (the test makes peers
  without a permission send to the relay meanwhile); then relays to indication_peer with
  CreatePermission, Send and Data indications, and to channel_peer over a channel, one datagram of
  each size at a time, each answered by the peer with the bytes reversed and inverted; then a Send
  indication to each peer again (a peer with a channel must answer over the channel); then
  releases the allocation and prints one JSON object with what it saw."""
import asyncio
import json
import sys

from aioice import stun
from aioice.turn import TurnClientTcpProtocol, TurnClientUdpProtocol

# aioice 0.8 knows TURN's methods but not the DATA attribute (0x0013) of Send and Data indications.
if 'DATA' not in stun.ATTRIBUTES_BY_NAME:
    entry = (0x0013, 'DATA', stun.pack_bytes, stun.unpack_bytes)
    stun.ATTRIBUTES_BY_NAME['DATA'] = entry
    stun.ATTRIBUTES_BY_TYPE[0x0013] = entry

WAIT = 2  # seconds for any one answer


def payload(tag, size):
    return bytes((i * 7 + size + tag) & 255 for i in range(size))


def answer_of(data):
    """What the test's peers send back for data."""
    return bytes(b ^ 0xff for b in reversed(data))


class Receiver:
    """The application above aioice's client: what came over channels."""

    def __init__(self):
        self.got = asyncio.Queue()

    def datagram_received(self, data, addr):
        self.got.put_nowait((list(addr), data))

    def connection_lost(self, exc):
        pass


class Hearing:
    """Mixed into aioice's TURN client (over UDP or TCP): also keeps Data indications and the server's answers."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.indications = asyncio.Queue()
        self.answers = []

    def datagram_received(self, data, addr):
        if len(data) >= 20 and data[0] < 4:
            try:
                m = stun.parse_message(data)
            except ValueError:
                m = None
            if m and m.message_class == stun.Class.INDICATION and m.message_method == stun.Method.DATA:
                peer = m.attributes.get('XOR-PEER-ADDRESS')
                self.indications.put_nowait((list(peer) if peer else None, m.attributes.get('DATA')))
                return
            if m and m.message_class in (stun.Class.RESPONSE, stun.Class.ERROR):
                a = {'method': m.message_method.name, 'class': m.message_class.name,
                     'integrity': 'MESSAGE-INTEGRITY' in m.attributes}
                if a['integrity'] and self.integrity_key:
                    try:
                        stun.parse_message(data, integrity_key=self.integrity_key)
                        a['integrity_ok'] = True
                    except ValueError:
                        a['integrity_ok'] = False
                for k in ('LIFETIME', 'XOR-RELAYED-ADDRESS', 'XOR-MAPPED-ADDRESS', 'ERROR-CODE'):
                    if k in m.attributes:
                        v = m.attributes[k]
                        a[k] = list(v) if isinstance(v, tuple) else v
                self.answers.append(a)
        super().datagram_received(data, addr)


class UdpClient(Hearing, TurnClientUdpProtocol):
    pass


class TcpClient(Hearing, TurnClientTcpProtocol):
    pass


async def next_of(queue):
    try:
        return await asyncio.wait_for(queue.get(), WAIT)
    except asyncio.TimeoutError:
        return None


def drain(queue):
    out = []
    while not queue.empty():
        addr, data = queue.get_nowait()
        out.append([addr, data.hex() if data is not None else None])
    return out


async def open_client(cfg):
    server = tuple(cfg['server'])
    loop = asyncio.get_running_loop()
    kind = TcpClient if cfg.get('transport') == 'tcp' else UdpClient
    make = lambda: kind(server, username=cfg['username'], password=cfg['password'], lifetime=600,
                        channel_refresh_time=500)
    if kind is TcpClient:
        _, client = await loop.create_connection(make, host=server[0], port=server[1])
    else:
        _, client = await loop.create_datagram_endpoint(make, remote_addr=server)
    client.receiver = Receiver()
    return server, client


async def allocate(cfg):
    server, client = await open_client(cfg)
    out = {'local': list(client.transport.get_extra_info('sockname'))}
    try:
        out['relayed'] = list(await client.connect())
    except stun.TransactionFailed as e:
        out['error'] = list(e.response.attributes['ERROR-CODE'])
    except stun.TransactionTimeout:
        out['error'] = 'timeout'
    if 'relayed' in out:
        await client.delete()
    else:
        client.transport.close()
    out['answers'] = client.answers
    return out


async def relay(cfg):
    server, client = await open_client(cfg)
    receiver = client.receiver
    ind_peer, ch_peer = tuple(cfg['indication_peer']), tuple(cfg['channel_peer'])
    out = {'local': list(client.transport.get_extra_info('sockname')), 'sent': {}, 'checks': []}

    def check(name, ok, detail=None):
        out['checks'].append([name, bool(ok)] + ([detail] if detail is not None else []))

    out['relayed'] = list(await client.connect())
    print(json.dumps({'event': 'allocated', 'relayed': out['relayed'], 'local': out['local']}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    check('nothing relayed from peers without a permission', client.indications.empty() and receiver.got.empty(),
          {'indications': drain(client.indications), 'channel': drain(receiver.got)})

    # Send and Data indications, after a CreatePermission for the peer's address.
    req = stun.Message(message_method=stun.Method.CREATE_PERMISSION, message_class=stun.Class.REQUEST)
    req.attributes['XOR-PEER-ADDRESS'] = ind_peer
    await client.request_with_retry(req)

    def send_indication(data, peer):
        ind = stun.Message(message_method=stun.Method.SEND, message_class=stun.Class.INDICATION)
        ind.attributes['XOR-PEER-ADDRESS'] = peer
        ind.attributes['DATA'] = data
        client.send_stun(ind, server)

    out['sent']['indication'] = []
    for size in cfg['sizes']:
        data = payload(1, size)
        out['sent']['indication'].append(data.hex())
        send_indication(data, ind_peer)
        got = await next_of(client.indications)
        check(f'Data indication answer of {size} bytes', got and got[0] == list(ind_peer) and got[1] == answer_of(data),
              None if got and got[1] == answer_of(data) else {'got': got and [got[0], got[1] is not None and len(got[1])]})
        if not got:
            break  # the rest would only wait as long again

    # A channel: aioice binds it at the first datagram to the peer and sends ChannelData.
    out['sent']['channel'] = []
    for size in cfg['sizes']:
        data = payload(2, size)
        out['sent']['channel'].append(data.hex())
        await asyncio.wait_for(client.send_data(data, ch_peer), WAIT * 3)
        got = await next_of(receiver.got)
        check(f'ChannelData answer of {size} bytes', got and got[0] == list(ch_peer) and got[1] == answer_of(data),
              None if got and got[1] == answer_of(data) else {'got': got and [got[0], len(got[1])]})
        if not got:
            break
    check('the channel peer answered only over the channel', client.indications.empty(), drain(client.indications))
    out['channels'] = {str(k): list(v) for k, v in client.channel_to_peer.items()}

    # A Send indication to the peer with a channel: its answer must come as ChannelData (RFC 8656
    # section 12.5); to the other peer, still as a Data indication.
    out['sent']['mixed'] = []
    data = payload(3, 300)
    out['sent']['mixed'].append(data.hex())
    send_indication(data, ch_peer)
    got = await next_of(receiver.got)
    check('Send indication to the channel peer, answered over the channel', got and got[1] == answer_of(data))
    check('no Data indication from the channel peer', client.indications.empty(), drain(client.indications))
    data = payload(4, 200)
    out['sent']['mixed'].append(data.hex())
    send_indication(data, ind_peer)
    got = await next_of(client.indications)
    check('Send indication to the other peer, answered in a Data indication', got and got[0] == list(ind_peer) and got[1] == answer_of(data))

    if cfg.get('release', True):
        await client.delete()  # Refresh with LIFETIME 0
    else:
        client.transport.close()
    out['answers'] = client.answers
    return out


async def main():
    cfg = json.loads(sys.argv[1])
    out = await (relay(cfg) if cfg['mode'] == 'relay' else allocate(cfg))
    print(json.dumps(out), flush=True)


asyncio.run(main())
