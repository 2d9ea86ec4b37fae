"""Drives berthd with the docker Python SDK (PyPI `docker`), unmodified.

Usage: python docker_sdk.py SOCKET_PATH. Prints `docker-py ok` on success; any
failed check raises and exits non-zero.
"""
import sys

import docker

client = docker.DockerClient(base_url="unix://" + sys.argv[1], version="auto")
assert client.ping()
assert client.version()["ApiVersion"] == "1.45"

out = client.containers.run("busybox", ["sh", "-c", "echo hi"], remove=True)
assert out == b"hi\n", out

ctr = client.containers.run(
    "busybox", ["sh", "-c", "echo one; echo two; sleep 30"], detach=True, name="py1", labels={"sdk": "py"}
)
stream = ctr.logs(stream=True, follow=True)
seen = b""
for chunk in stream:
    seen += chunk
    if b"two" in seen:
        break
assert seen.startswith(b"one\n"), seen

code, (out, err) = ctr.exec_run(["sh", "-c", "echo out; echo err >&2; exit 3"], demux=True)
assert (code, out, err) == (3, b"out\n", b"err\n"), (code, out, err)

chunks = list(ctr.exec_run(["sh", "-c", "echo a; echo b"], stream=True, demux=True).output)
joined = b"".join(o or b"" for o, _ in chunks)
assert joined == b"a\nb\n", chunks

stats = ctr.stats(stream=False)
assert stats["memory_stats"]["usage"] > 0, stats
assert stats["name"] == "/py1"

assert [c.name for c in client.containers.list(filters={"label": "sdk=py"})] == ["py1"]
ctr.reload()
assert ctr.status == "running"
ctr.pause()
ctr.reload()
assert ctr.status == "paused"
ctr.unpause()
ctr.stop(timeout=1)
assert ctr.wait()["StatusCode"] == 137
ctr.remove()

events = client.events(decode=True, since=0, until=int(__import__("time").time()) + 1, filters={"container": "py1"})
actions = [e["Action"] for e in events]
assert actions[:2] == ["create", "start"] and "destroy" in actions, actions

# Volumes, put_archive/get_archive, commit.
vol = client.volumes.create(name="pyvol", labels={"sdk": "py"})
assert vol.attrs["Labels"] == {"sdk": "py"}, vol.attrs
box = client.containers.run("busybox", ["sleep", "30"], detach=True, name="pybox",
                            volumes={"pyvol": {"bind": "/data", "mode": "rw"}})
buf = __import__("io").BytesIO()
with __import__("tarfile").open(fileobj=buf, mode="w") as t:
    info = __import__("tarfile").TarInfo("hello.txt")
    info.size = 6
    t.addfile(info, __import__("io").BytesIO(b"hello\n"))
assert box.put_archive("/data", buf.getvalue())
bits, stat = box.get_archive("/data/hello.txt")
data = b"".join(bits)
with __import__("tarfile").open(fileobj=__import__("io").BytesIO(data)) as t:
    assert t.extractfile("hello.txt").read() == b"hello\n"
assert stat["name"] == "hello.txt" and stat["size"] == 6, stat
img = box.commit(repository="pycommit", tag="1", message="from sdk")
assert client.containers.run("pycommit:1", ["cat", "/etc/passwd"], remove=True).startswith(b"root:")
box.remove(force=True)
assert [v.name for v in client.volumes.list(filters={"label": "sdk=py"})] == ["pyvol"]
vol.remove()

# Networks, and attach_socket.
net = client.networks.create("pynet", driver="bridge", labels={"sdk": "py"})
web = client.containers.run("busybox", ["sh", "-c", "echo py-net > /i.html; exec httpd -f -p 80 -h /"],
                            detach=True, name="pyweb", network="pynet")
net.reload()
assert [c.name for c in net.containers] == ["pyweb"], net.containers
got = client.containers.run("busybox", ["wget", "-qO-", "http://pyweb/i.html"], network="pynet", remove=True)
assert got == b"py-net\n", got
assert [n.name for n in client.networks.list(filters={"label": "sdk=py"})] == ["pynet"]
web.remove(force=True)
net.remove()

talker = client.containers.run("busybox", ["sh", "-c", "read x; echo got-$x"], detach=True, stdin_open=True)
sock = talker.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1})
sock._sock.sendall(b"sdk\n")
data = b""
while b"got-sdk" not in data:
    chunk = sock._sock.recv(4096)
    if not chunk:
        break
    data += chunk
assert b"got-sdk" in data, data
assert talker.wait()["StatusCode"] == 0
talker.remove()

image = client.images.get("busybox")
assert "busybox:latest" in image.tags
print("docker-py ok")
