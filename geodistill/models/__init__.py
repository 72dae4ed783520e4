"""geodistill.models"""
