"""An aiortc peer for Camus's tests: joins a room over a data channel, round-trips messages on an
"echo" channel, pings Ground Control, and times joins.  Prints one JSON object with what it saw.
Usage: aiortc_client.py URL ROOM JOINS"""
import asyncio
import json
import sys
import time
import urllib.request

import aioice.ice
from aiortc import RTCPeerConnection, RTCSessionDescription

# aiortc skips loopback when gathering; the tests run on 127.0.0.1 only.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ['127.0.0.1']


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={'Content-Type': 'application/json'})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b'{}')


async def wait_open(channel, timeout=10):
    if channel.readyState == 'open':
        return
    opened = asyncio.get_running_loop().create_future()
    channel.on('open', lambda: opened.done() or opened.set_result(True))
    await asyncio.wait_for(opened, timeout)


async def join(url, room, echo):
    pc = RTCPeerConnection()
    gc = pc.createDataChannel('ground-control')
    inbox = asyncio.Queue()
    gc.on('message', lambda m: inbox.put_nowait(m))
    ec = pc.createDataChannel('echo') if echo else None
    echoes = asyncio.Queue()
    if ec:
        ec.on('message', lambda m: echoes.put_nowait(m))
    await pc.setLocalDescription(await pc.createOffer())
    t0 = time.monotonic()
    status, answer = await asyncio.get_running_loop().run_in_executor(
        None, post, f'{url}/rtc/{room}/offer', {'sdp': pc.localDescription.sdp, 'type': 'offer'})
    if status != 200:
        await pc.close()
        return {'status': status, 'answer': answer}
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer['sdp'], type='answer'))
    await wait_open(gc)
    open_ms = (time.monotonic() - t0) * 1000
    greeting = json.loads(await asyncio.wait_for(inbox.get(), 10))
    gc.send(json.dumps({'sender': 'me', 'receiver': 'ground control', 'type': 'ping', 'data': 42}))
    pong = json.loads(await asyncio.wait_for(inbox.get(), 10))
    pong_ms = (time.monotonic() - t0) * 1000
    out = {'status': 200, 'open_ms': open_ms, 'pong_ms': pong_ms, 'greeting': greeting, 'pong': pong}
    if ec:
        await wait_open(ec)
        results = []
        big = bytes((i * 7) & 255 for i in range(65536))
        for name, value in [('string', 'hello from aiortc'), ('unicode', 'h\u00e9 \U0001F680'),
                            ('max string', 'y' * 65536), ('binary', b'\x00\x01\x02'), ('max binary', big)]:
            ec.send(value)
            got = await asyncio.wait_for(echoes.get(), 10)
            results.append([name, got == value])
        out['echoes'] = results
    await pc.close()
    return out


async def main():
    url, room, joins = sys.argv[1], sys.argv[2], int(sys.argv[3])
    first = await join(url, room, True)
    times = []
    for _ in range(joins):
        r = await join(url, room, False)
        if r['status'] != 200:
            break
        times.append([r['open_ms'], r['pong_ms']])
    first['joins'] = times
    print(json.dumps(first))


asyncio.run(main())
