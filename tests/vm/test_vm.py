"""The vm layer: boot Debian's stock kernel (it has IPVS) under QEMU and run tests/vm in it.

This machine's kernel has no ``ip_vs`` and cannot load modules, so the IPVS tests
(``@pytest.mark.vm_inner``) run in a guest: virtme-ng boots ``/boot/vmlinuz-*`` (package
linux-image-amd64, installed by scripts/bootstrap) with this machine's root filesystem
shared read-only, so the guest sees this checkout, .venv and the Debian tools. One boot for
the whole layer; the inner pytest's output is shown and its exit status is the verdict.

KVM is not used: a nested KVM guest hangs here right after "Probing EDD", so QEMU emulates
the CPU (TCG). That is slow for Python (about 30x), which is why the guest runs the tests
from a second, cached 9p mount (guest.sh) and why the inner tests start as few Python
processes as they can.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VNG = Path(sys.executable).with_name("vng")
GUEST = Path(__file__).with_name("guest.sh")
BOOT_TIMEOUT_S = 1200  # the whole guest run; it normally takes a few minutes


def _kernel() -> Path | None:
    """The newest /boot/vmlinuz-* that has its modules (ip_vs is a module in Debian)."""
    found = []
    for image in Path("/boot").glob("vmlinuz-*"):
        version = image.name.removeprefix("vmlinuz-")
        if (Path("/lib/modules") / version / "kernel/net/netfilter/ipvs").is_dir():
            found.append(image)
    return max(found, key=lambda p: [int(x) for x in re.findall(r"\d+", p.name)], default=None)


@pytest.mark.vm
@pytest.mark.netns  # root only, and kept out of the fast `-m "not netns and not interop"` loop
@pytest.mark.timeout(BOOT_TIMEOUT_S + 60)
def test_ipvs_layer_in_a_debian_kernel_vm() -> None:
    if os.geteuid() != 0:
        pytest.skip("the vm layer needs root (network namespaces and IPVS in the guest)")
    kernel = _kernel()
    if kernel is None or not VNG.exists():
        pytest.skip(
            "no Debian kernel with IPVS modules or no virtme-ng in .venv:"
            " run scripts/bootstrap as root (PYKAD_VM=0 leaves them out)"
        )
    argv = [
        str(VNG),
        "--disable-kvm",
        "--force-9p",
        "--run",
        str(kernel),
        "--user",
        "root",
        "--memory",
        "1G",
        "--cpus",
        "2",
        # one "=" word: argparse would take a separate "-fsdev ..." for an option
        "--qemu-opts=-fsdev local,id=pykadfs,path=/,security_model=none,readonly=on,"
        "multidevs=remap -device virtio-9p-pci,fsdev=pykadfs,mount_tag=pykadroot",
        "--exec",
        f"sh {GUEST} {REPO} -m vm_inner -rs -q tests/vm",
    ]
    env = {**os.environ, "PATH": f"{VNG.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    proc = subprocess.run(
        argv,
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=BOOT_TIMEOUT_S,
        check=False,
    )
    output = proc.stdout + proc.stderr
    sys.stdout.write(output)  # the inner report, shown with -s or on failure
    assert proc.returncode == 0, f"the tests in the VM failed (exit {proc.returncode})"
    summary = [line for line in output.splitlines() if re.search(r"\d+ passed", line)]
    assert summary, "no pytest summary from the guest"
    # an inner skip would hide a missing feature of the guest: every inner test must run
    assert not re.search(r"skipped|failed|error", summary[-1]), summary[-1]
