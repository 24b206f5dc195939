"""The Qt-free chat service every face calls: sampling rule, engine messages, replies into the store."""
