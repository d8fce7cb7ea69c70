"""The e-commerce shop that chaoskit deploys as its system under test.

One image runs every service: ``python3 -m shop <service>`` with service one of
gateway, product, order, payment, notification (see ``__main__.py``). Inside the image
this folder is the top-level package ``shop``; it therefore uses only relative imports
and imports nothing else from chaoskit.

Nothing is imported here, so that importing the package (for instance to read
``schema.sql``) needs none of the services' libraries.
"""

from __future__ import annotations
