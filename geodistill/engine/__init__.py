"""geodistill.engine"""
