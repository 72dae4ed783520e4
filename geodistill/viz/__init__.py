"""geodistill.viz"""
