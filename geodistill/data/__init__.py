"""geodistill.data"""
