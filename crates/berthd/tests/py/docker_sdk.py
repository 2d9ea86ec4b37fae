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

image = client.images.get("busybox")
assert "busybox:latest" in image.tags
print("docker-py ok")
