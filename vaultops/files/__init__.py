"""Every file vaultops reads or writes goes through here.

    loader.py, strict_yaml.py, explain.py, model.py   one validated loader: size caps, strict YAML/JSON,
                                                      typed schemas, one error naming file and key
    atomic.py                                          atomic writes (temp file, fsync, rename), 0600 secrets
    lock.py                                            the one lock helper (O_NOFOLLOW, 0600, 0700 folders)
"""
