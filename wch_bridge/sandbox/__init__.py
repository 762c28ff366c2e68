"""A local fake of the WhatsApp Cloud API and the Catalog API (stdlib ``http.server``), for tests and the demo.

API routes (any ``/v<major>.<minor>/`` prefix; reference C.9):

* ``POST /{v}/{phone_number_id}/messages``: validates the body, answers the C.3 success shape (``wamid.`` ids)
  or a C.4 error body (bad token 190, window closed 131047, missing/invalid parameters 131008/131009/100...).
* ``POST /{v}/{catalog_id}/items_batch`` and legacy ``/batch``: ``handles`` + ``validation_status``.
* ``GET /{v}/{catalog_id}/check_batch_request_status?handle=``: ``finished`` (after ``batch_delay_ms``).

Control routes: ``GET /_sandbox/requests[?path_contains=]``, ``GET|POST /_sandbox/faults``,
``POST /_sandbox/reset``, ``GET|POST /_sandbox/config``, ``GET /_sandbox/catalog?catalog_id=``,
``GET /_sandbox/health``. The Authorization header is never recorded.
"""

from wch_bridge.sandbox.faults import FaultRule, error_body, http_status_for
from wch_bridge.sandbox.server import Sandbox, serve

__all__ = ["FaultRule", "Sandbox", "error_body", "http_status_for", "serve"]
