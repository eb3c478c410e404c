"""HTTP streams as Envoy's filter manager runs them.

:mod:`.stream` is one HTTP stream context (the receiver of its host calls), :mod:`.headers` the
header maps, :mod:`.types` the records of what happened (callbacks, messages sent on, local
replies), :mod:`.messages` the one request/response model and the one way to feed it into a
stream, and :mod:`.chain` filter chains.
"""
