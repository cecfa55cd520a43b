"""An outbound plug-in whose setup fails: the hub must log it and carry on."""
