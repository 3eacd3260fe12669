"""docker-py (Debian's python3-docker) against berthd: containers, exec, images, volumes.
Run by docker-sdk.test.ts with the daemon's socket as the only argument; prints one line per check."""
import sys

import docker

client = docker.DockerClient(base_url=sys.argv[1], version="auto", timeout=30)
cgroup_parent = sys.argv[2]

assert client.ping() is True
print("ping ok")
tags = [tag for image in client.images.list() for tag in image.tags]
assert "busybox:latest" in tags, tags
print("images ok")

output = client.containers.run("busybox", ["sh", "-c", "echo hello from docker-py"], remove=True, cgroup_parent=cgroup_parent)
assert output == b"hello from docker-py\n", output
print("run ok")

container = client.containers.run("busybox", ["sleep", "1000"], detach=True, name="py-sleeper", labels={"sdk": "python"}, cgroup_parent=cgroup_parent)
container.reload()
assert container.status == "running", container.status
assert client.containers.list(filters={"label": "sdk=python"})[0].id == container.id
code, out = container.exec_run(["sh", "-c", "echo exec $((6 * 7))"])
assert code == 0 and out == b"exec 42\n", (code, out)
print("exec ok")
container.stop(timeout=1)
container.reload()
assert container.status == "exited", container.status
assert container.wait()["StatusCode"] == 137
container.remove()
print("lifecycle ok")

volume = client.volumes.create(name="py-volume", labels={"sdk": "python"})
assert any(v.name == "py-volume" for v in client.volumes.list())
volume.remove()
print("volumes ok")
