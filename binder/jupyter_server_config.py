"""jupyter-server-proxy entry for the rotorlab Explorer (copied to ~/.jupyter by postBuild).

JupyterLab's launcher gets a "rotorlab Explorer" tile; the app is also reachable at
``<notebook server>/rotorlab-explorer/``. jupyter-server-proxy starts ``panel serve`` on a
free port bound to localhost and forwards to it.
"""

import os

from rotorlab.viz.app_cli import serve_command
from rotorlab.viz.ngl import NGLUnavailable, ngl_js_path


def _explorer(port, base_url):
    try:
        ngl = ngl_js_path().parent
    except NGLUnavailable:
        ngl = None
    prefix = base_url.rstrip("/") + "/rotorlab-explorer"
    cmd = serve_command(port=port, address="127.0.0.1", ngl_dir=ngl,
                        allow_websocket_origin="*", prefix=prefix)
    return cmd


c = get_config()  # noqa: F821  (provided by Jupyter)
c.ServerProxy.servers = {
    "rotorlab-explorer": {
        "command": lambda port, base_url="/": _explorer(port, base_url),
        "timeout": 120,
        "absolute_url": True,
        "environment": {"ROTORLAB_APP_WORKDIR": os.path.expanduser("~/rotorlab-app")},
        "launcher_entry": {"title": "rotorlab Explorer", "enabled": True,
                           "path_info": "rotorlab-explorer/explorer"},
        "new_browser_tab": True,
    }
}
