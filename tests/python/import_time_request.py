"""A module that calls an API while it is being imported (module-level
code), as configuration loaders and SDK clients sometimes do: pytrace run
must see it. Usage: import_time_request.py URL CA"""

import ssl
import sys
import urllib.request

CONFIG = urllib.request.urlopen(sys.argv[1], context=ssl.create_default_context(cafile=sys.argv[2])).read()
